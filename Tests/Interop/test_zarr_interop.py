"""zarr-python reads every Zarr variant Tessera writes bit-exactly; ome-zarr-models validates Tessera's
OME-Zarr 0.4 and 0.5 images; Tessera reads arrays zarr-python writes."""
import json
import warnings

import numcodecs
import numpy as np
import pytest
import zarr
from ome_zarr_models import open_ome_zarr
from ome_zarr_models.exceptions import ValidationWarning
import ome_zarr_models.v04 as v04
import ome_zarr_models.v05 as v05

CODECS = ["zstd", "blosc-lz4", "blosc-zstd", "gzip", "none"]


def sample(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(300, 80, size=shape)
    a[tuple(slice(0, max(1, s // 3)) for s in shape)] = 0  # a region of fill: some chunks stay unwritten
    if dtype == np.float32:
        return a.astype(np.float32)
    return np.clip(np.rint(a), 0, np.iinfo(dtype).max).astype(dtype)


@pytest.mark.parametrize("fmt", [2, 3])
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32], ids=["uint8", "uint16", "float32"])
@pytest.mark.parametrize("shape,chunks", [((37, 45), "16,16"), ((11, 29, 33), "4,8,16")], ids=["2d", "3d"])
def test_zarr_python_reads_what_we_write(tmp_path, run_tessera, fmt, codec, dtype, shape, chunks):
    a = sample(shape, dtype)
    np.save(tmp_path / "a.npy", a)
    out = tmp_path / "a.zarr"
    run_tessera("convert", tmp_path / "a.npy", out, "--zarr-format", fmt, "--codec", codec, "--chunks", chunks)
    z = zarr.open_array(out, mode="r")
    assert z.dtype == a.dtype and z.shape == a.shape
    np.testing.assert_array_equal(z[...], a)
    assert z.metadata.zarr_format == fmt


@pytest.mark.parametrize("codec", ["zstd", "blosc-lz4", "gzip", "none"])
def test_zarr_python_reads_sharded(tmp_path, run_tessera, codec):
    a = sample((2, 21, 40, 50), np.uint16, seed=3)
    np.save(tmp_path / "a.npy", a)
    out = tmp_path / "s.zarr"
    run_tessera("convert", tmp_path / "a.npy", out, "--codec", codec, "--chunks", "1,4,8,8", "--shard", "2,8,16,32")
    meta = json.loads((out / "zarr.json").read_text())
    assert meta["codecs"][0]["name"] == "sharding_indexed"
    np.testing.assert_array_equal(zarr.open_array(out, mode="r")[...], a)


def validate(path, version):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ValidationWarning)
        img = open_ome_zarr(path)
        assert isinstance(img, v05.Image if version == "0.5" else v04.Image)
        group = zarr.open_group(path, mode="r")
        (v05.Image if version == "0.5" else v04.Image).from_zarr(group)
    return img


@pytest.mark.parametrize("fmt,version", [(3, "0.5"), (2, "0.4")])
@pytest.mark.parametrize("spatial", [(19, 70, 90), (70, 90)], ids=["czyx", "cyx"])
def test_ome_zarr_images_validate_and_read(tmp_path, run_tessera, fmt, version, spatial):
    a = sample((2,) + spatial, np.uint16, seed=7)
    np.save(tmp_path / "a.npy", a)
    out = tmp_path / "img.ome.zarr"
    voxel = "2.0,0.4,0.4" if len(spatial) == 3 else "0.4,0.4"
    extra = ["--shard", ",".join(["32"] * len(spatial))] if fmt == 3 else []
    run_tessera("convert", tmp_path / "a.npy", out, "--ome", "--zarr-format", fmt, "--voxel-size", voxel,
                "--pyramid", 3, "--chunks", ",".join(["16"] * len(spatial)), *extra)
    img = validate(out, version)
    ms = (img.attributes.ome.multiscales if version == "0.5" else img.attributes.multiscales)[0]
    assert [ax.name for ax in ms.axes] == ["c", "z", "y", "x"][: 1] + ["z", "y", "x"][3 - len(spatial):]
    assert [d.path for d in ms.datasets] == ["0", "1", "2"]
    np.testing.assert_array_equal(zarr.open_array(out / "0", mode="r")[...], a)
    # Level 1: 2x2 block mean in y,x (z stays: 2.0 µm is coarser than 0.8 µm), rounded half away from zero.
    l1 = zarr.open_array(out / "1", mode="r")[...]
    ys, xs = spatial[-2:]
    f = a.astype(np.float64)
    pad = [(0, 0)] * (a.ndim - 2) + [(0, ys % 2), (0, xs % 2)]
    counts = np.pad(np.ones_like(f), pad).reshape(f.shape[:-2] + ((ys + 1) // 2, 2, (xs + 1) // 2, 2)).sum(axis=(-3, -1))
    sums = np.pad(f, pad).reshape(counts.shape[:-2] + ((ys + 1) // 2, 2, (xs + 1) // 2, 2)).sum(axis=(-3, -1))
    mean = sums / counts
    np.testing.assert_array_equal(l1, np.floor(mean + 0.5).astype(np.uint16))
    # Scale and pixel-centre translation per level.
    t = ms.datasets[1].coordinateTransformations
    np.testing.assert_allclose(t[0].scale, [1] + ([2.0] if len(spatial) == 3 else []) + [0.8, 0.8])
    np.testing.assert_allclose(t[1].translation, [0] + ([0.0] if len(spatial) == 3 else []) + [0.2, 0.2])
    attrs = zarr.open_group(out, mode="r").attrs.asdict()
    assert attrs["tessera"]["status"] == "complete"
    if version == "0.5":
        for level in range(3):
            assert json.loads((out / str(level) / "zarr.json").read_text())["dimension_names"][0] == "c"


ZARR_PYTHON_VARIANTS = {
    "v2-blosc-lz4": dict(zarr_format=2, compressors=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=1)),
    "v2-zstd": dict(zarr_format=2, compressors=numcodecs.Zstd(level=3)),
    "v2-gzip": dict(zarr_format=2, compressors=numcodecs.GZip(level=5)),
    "v2-zlib": dict(zarr_format=2, compressors=numcodecs.Zlib(level=1)),
    "v2-raw-dot-keys": dict(zarr_format=2, compressors=None),
    "v3-zstd": dict(zarr_format=3, compressors=zarr.codecs.ZstdCodec(level=3)),
    "v3-blosc": dict(zarr_format=3, compressors=zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")),
    "v3-gzip": dict(zarr_format=3, compressors=zarr.codecs.GzipCodec(level=4)),
    "v3-sharded": dict(zarr_format=3, shards=(8, 32, 32), compressors=zarr.codecs.ZstdCodec(level=1)),
    "v3-fill-7": dict(zarr_format=3, fill_value=7, compressors=zarr.codecs.ZstdCodec(level=1)),
}


@pytest.mark.parametrize("variant", list(ZARR_PYTHON_VARIANTS))
@pytest.mark.parametrize("dtype", [np.uint16, np.float32], ids=["uint16", "float32"])
def test_we_read_what_zarr_python_writes(tmp_path, run_tessera, variant, dtype):
    a = sample((19, 70, 90), dtype, seed=11)
    kwargs = dict(ZARR_PYTHON_VARIANTS[variant])
    fill = kwargs.pop("fill_value", 0)
    path = tmp_path / "zp.zarr"
    z = zarr.create_array(path, shape=a.shape, chunks=(4, 16, 16), dtype=a.dtype, fill_value=fill, **kwargs)
    z[...] = a
    z[0:4, 0:16, 0:16] = fill  # an unwritten (all-fill) chunk
    expected = z[...]
    run_tessera("convert", path, tmp_path / "back.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "back.npy"), expected)
