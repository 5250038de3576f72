"""`tessera simulate --source` on volumes written by tifffile and h5py: tiles at integer true positions
(`--subpixel 0`, equal voxel sizes) are exact crops of the source; truth.json agrees with the attributes."""
import json

import h5py
import numpy as np
import pytest
import tifffile


def source_volume(dtype=np.uint16):
    rng = np.random.default_rng(3)
    return rng.integers(0, 4000, size=(12, 70, 80)).astype(dtype)


def check_tiles(out, src, tile_shape):
    truth = json.loads((out / "truth.json").read_text())
    true = np.asarray(truth["true_positions_um"])
    vox = np.asarray(truth["voxel_size_um"])
    assert len(truth["files"]) == 4
    for t, name in enumerate(truth["files"]):
        with h5py.File(out / name, "r") as f:
            d = f["ch0"]
            np.testing.assert_array_equal(d.attrs["position_um"], truth["stated_positions_um"][t])
            np.testing.assert_array_equal(d.attrs["voxel_size_um"], vox)
            origin = true[t] / vox
            assert np.array_equal(origin, np.round(origin))  # zero fractional part
            o = origin.astype(int)
            expected = src[tuple(slice(a, a + n) for a, n in zip(o, tile_shape))]
            np.testing.assert_array_equal(d[...], expected)
            assert d.dtype == np.uint16
    return truth


# PackBits would need imagecodecs in tifffile; the Swift tests cover it (TIFFTests, and pollen.tif).
@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_tiff_source_at_integer_positions_reproduces_the_crop(tmp_path, run_tessera, compression, byteorder):
    src = source_volume()
    tifffile.imwrite(tmp_path / "src.tif", src.astype(byteorder + "u2"), compression=compression, rowsperstrip=16)
    out = tmp_path / "tiles"
    run_tessera("simulate", out, "--source", tmp_path / "src.tif", "--tile-shape", "10,36,40", "--grid", "1,2,2",
                "--subpixel", 0, "--jitter", 3, "--chunks", "8,32,32")
    truth = check_tiles(out, src, (10, 36, 40))
    assert truth["source_shape"] == [12, 70, 80]
    # Stated positions are off the true ones by at most 3 voxels, and only along the tiled axes.
    err = (np.asarray(truth["stated_positions_um"]) - np.asarray(truth["true_positions_um"]))
    assert np.all(err[:, 0] == 0) and np.all(np.abs(err) <= 3 + 1e-9) and np.any(err != 0)


def test_hdf5_source_with_a_crop_and_subpixel_truth(tmp_path, run_tessera):
    src = source_volume(np.int16)
    with h5py.File(tmp_path / "src.h5", "w") as f:
        f["vol"] = src
    out = tmp_path / "tiles"
    run_tessera("simulate", out, "--source", f"{tmp_path}/src.h5:vol", "--crop", "1:12,3:70,0:80",
                "--tile-shape", "10,36,40", "--grid", "1,2,2", "--subpixel", 0)
    truth = check_tiles(out, src[1:12, 3:70, 0:80], (10, 36, 40))
    assert truth["source_crop"] == [[1, 3, 0], [12, 70, 80]]
    # With subpixel offsets (default) and a coarser z the true positions are fractional, and the run
    # is deterministic.
    outs = []
    for k in range(2):
        o = tmp_path / f"sub{k}"
        run_tessera("simulate", o, "--source", f"{tmp_path}/src.h5:vol", "--tile-shape", "5,36,40", "--grid", "1,2,2",
                    "--voxel-size", "2,1,1", "--noise", "poisson", "--seed", 9)
        outs.append(o)
    t = json.loads((outs[0] / "truth.json").read_text())
    frac = np.asarray(t["true_positions_um"]) / np.asarray(t["voxel_size_um"]) % 1
    assert np.any(frac != 0)
    for name in t["files"] + ["truth.json"]:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


def test_errors_are_one_line(tmp_path, run_tessera):
    tifffile.imwrite(tmp_path / "src.tif", source_volume())
    r = run_tessera("simulate", tmp_path / "o", "--source", tmp_path / "src.tif", "--tile-shape", "10,60,60",
                    "--grid", "1,2,2", check=False)
    assert r.returncode != 0
    assert "does not fit" in r.stderr and "largest grid" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    tifffile.imwrite(tmp_path / "tiled.tif", source_volume(), tile=(32, 32))
    r = run_tessera("simulate", tmp_path / "o", "--source", tmp_path / "tiled.tif", check=False)
    assert r.returncode != 0 and "tiled layout" in r.stderr and "tiled.tif" in r.stderr
