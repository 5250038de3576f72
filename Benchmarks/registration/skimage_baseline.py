"""Baseline for tessera refine-positions: scikit-image phase_cross_correlation(upsample_factor=10) on the
same overlap pairs (every two tiles whose boxes at the stated positions overlap by at least 8 voxels on
every axis), then a least-squares solve for one translation per tile (mean correction zero).

It reads the same HDF5 tile files (datasets with `position_um` and `voxel_size_um` attributes, as
`tessera simulate` writes them) inside its timed region, takes one channel (--channel; run.sh passes 0,
the channel Tessera registers by default) or averages each tile's channels, and writes the refined positions (µm) and the in-process time to OUT.json:
{"seconds": s, "pairs": n, "tiles": [{"tile": t, "position_um": [...], "voxel_size_um": [...]}]}.
Single-threaded (NumPy's FFT).

Usage: skimage_baseline.py TILE.h5... -o OUT.json [--channel C]
"""
import argparse
import json
import time

import h5py
import numpy as np
from skimage.registration import phase_cross_correlation


def read_tiles(files, channel):
    """Each tile (by its `tile` attribute, else file index): mean over its channels, float32."""
    tiles = {}
    for index, f in enumerate(files):
        with h5py.File(f, "r") as h:
            names = sorted(k for k in h if isinstance(h[k], h5py.Dataset) and "position_um" in h[k].attrs)
            for name in names:
                d = h[name]
                c = int(d.attrs.get("channel", [0])[0])
                if channel is not None and c != channel:
                    continue
                t = int(d.attrs.get("tile", [index])[0])
                vox = np.asarray(d.attrs["voxel_size_um"], float)
                pos = np.asarray(d.attrs["position_um"], float)
                entry = tiles.setdefault(t, {"sum": None, "count": 0, "vox": vox, "pos": pos})
                data = d[...].astype(np.float32)
                entry["sum"] = data if entry["sum"] is None else entry["sum"] + data
                entry["count"] += 1
    ids = sorted(tiles)
    data = [tiles[t]["sum"] / tiles[t]["count"] for t in ids]
    vox = [tiles[t]["vox"] for t in ids]
    pos = [tiles[t]["pos"] / tiles[t]["vox"] for t in ids]  # voxels
    return ids, data, vox, pos


def main():
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="+")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--channel", type=int, default=None)
    p.add_argument("--min-overlap", type=int, default=8)
    args = p.parse_args()
    start = time.perf_counter()
    ids, data, vox, pos = read_tiles(args.files, args.channel)
    n = len(data)
    links = []
    for i in range(n):
        for j in range(i + 1, n):
            lo = np.maximum(pos[i], pos[j])
            hi = np.minimum(pos[i] + data[i].shape, pos[j] + data[j].shape)
            if np.any(hi - lo < args.min_overlap):
                continue
            k = np.rint(pos[i] - pos[j]).astype(int)
            delta = pos[i] - pos[j]
            a0 = np.ceil(lo - pos[i]).astype(int)
            a1 = np.floor(hi - pos[i]).astype(int)
            a0, a1 = np.maximum(a0, 0), np.minimum(a1, data[i].shape)
            b0, b1 = a0 + k, a1 + k
            b0, b1 = np.maximum(b0, 0), np.minimum(b1, data[j].shape)
            a0, a1 = b0 - k, b1 - k
            if np.any(a1 - a0 < 4):
                continue
            ra = data[i][tuple(slice(s, e) for s, e in zip(a0, a1))]
            rb = data[j][tuple(slice(s, e) for s, e in zip(b0, b1))]
            shift, error, _ = phase_cross_correlation(ra, rb, upsample_factor=10)
            # shift registers rb onto ra: rb(x) = ra(x + shift); correction of tile j in voxels:
            links.append((i, j, shift - (k - delta)))
    # Least squares: t_j - t_i = m_ij, plus sum(t) = 0.
    rows, rhs = [], []
    for i, j, m in links:
        r = np.zeros(n)
        r[j], r[i] = 1, -1
        rows.append(r)
        rhs.append(m)
    rows.append(np.ones(n))
    rhs.append(np.zeros(len(pos[0])))
    t, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    refined = [(pos[i] + t[i]) * vox[i] for i in range(n)]
    seconds = time.perf_counter() - start
    with open(args.output, "w") as f:
        json.dump({"seconds": seconds, "pairs": len(links),
                   "tiles": [{"tile": ids[i], "position_um": refined[i].tolist(), "voxel_size_um": vox[i].tolist()}
                             for i in range(n)]}, f)


if __name__ == "__main__":
    main()
