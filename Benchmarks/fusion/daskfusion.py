"""The DaskFusion approach, as a baseline: dask map_blocks over output chunks; for every tile that
intersects a block, scipy.ndimage.affine_transform (order=1) of the whole tile into the block; max
blending; written to Zarr v3 with the same codec and chunks as Tessera (blosc lz4, byte shuffle).
2D or 3D.

The clock starts before the tiles are read from their HDF5 files (as a user's script would run),
so the time is reading + resampling + blending + encoding + writing. `read_seconds` is the part
spent reading and decoding the tiles.

Usage: daskfusion.py TILE_FILES... --out OUT.zarr [--threads 2] [--chunks 64,128,128]
Prints one JSON line: voxels, seconds, read_seconds, mvoxel_per_s.
"""
import argparse
import json
import time

import dask
import dask.array as da
import h5py
import numpy as np
import scipy.ndimage as ndi
import zarr


def main():
    p = argparse.ArgumentParser()
    p.add_argument("tiles", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--chunks", default=None, help="default 64,128,128 (3D) or 1024,1024 (2D)")
    args = p.parse_args()

    start = time.perf_counter()
    # Load tiles: per channel, (data, world position in voxels). Positions from attributes, as Tessera reads them.
    views = {}
    for path in args.tiles:
        with h5py.File(path, "r") as f:
            for name in f:
                d = f[name]
                if "position_um" not in d.attrs:
                    continue
                voxel = np.asarray(d.attrs["voxel_size_um"], float)
                pos = np.asarray(d.attrs["position_um"], float) / voxel
                views.setdefault(int(d.attrs["channel"][0]), []).append((d[...], pos))
    read_seconds = time.perf_counter() - start
    ndim = len(next(iter(views.values()))[0][0].shape)
    default = (64, 128, 128) if ndim == 3 else (1024, 1024)
    chunks = tuple(int(c) for c in args.chunks.split(",")) if args.chunks else default
    lower = np.min([pos for vs in views.values() for _, pos in vs], axis=0)
    upper = np.max([pos + np.array(a.shape) for vs in views.values() for a, pos in vs], axis=0)
    shape = tuple(int(np.ceil(u - l)) for l, u in zip(lower, upper))
    chunks = tuple(min(c, s) for c, s in zip(chunks, shape))

    def fuse_block(block, block_info=None, tiles=()):
        loc = block_info[None]["array-location"]
        origin = np.array([s[0] for s in loc], float) + lower
        out_shape = tuple(s[1] - s[0] for s in loc)
        result = np.zeros(out_shape, np.float32)
        for data, pos in tiles:
            offset = origin - pos  # output voxel q samples the tile at q + offset
            hi = offset + np.array(out_shape)
            if np.any(hi <= -0.5) or np.any(offset >= np.array(data.shape) - 0.5):
                continue
            resampled = ndi.affine_transform(data.astype(np.float32), np.eye(ndim), offset=offset,
                                             output_shape=out_shape, order=1, mode="constant", cval=0)
            np.maximum(result, resampled, out=result)
        return np.clip(np.rint(result), 0, 65535).astype(np.uint16)

    with dask.config.set(scheduler="threads", num_workers=args.threads):
        for c, tiles in sorted(views.items()):
            template = da.zeros(shape, chunks=chunks, dtype=np.uint16)
            fused = template.map_blocks(fuse_block, tiles=tiles, dtype=np.uint16)
            z = zarr.create_array(f"{args.out}/{c}", shape=shape, chunks=chunks, dtype=np.uint16, overwrite=True,
                                  compressors=zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"))
            da.store(fused, z, lock=False)
    seconds = time.perf_counter() - start
    voxels = int(np.prod(shape)) * len(views)
    print(json.dumps({"voxels": voxels, "seconds": seconds, "read_seconds": read_seconds,
                      "mvoxel_per_s": voxels / seconds / 1e6}))


if __name__ == "__main__":
    main()
