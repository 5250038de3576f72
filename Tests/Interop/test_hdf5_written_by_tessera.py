"""h5py reads the HDF5 files Tessera writes, exactly."""
import h5py
import numpy as np
import pytest


@pytest.mark.parametrize(
    "tile_shape,grid,voxel,deflate",
    [
        ("12,40,52", "1,2,3", "2.0,0.5,0.5", 1),  # 3D, chunked + gzip
        ("48,64", "3,2", "0.65,0.65", 0),  # 2D, contiguous
    ],
)
def test_simulated_tiles_are_cut_from_the_ground_truth(tmp_path, run_tessera, tile_shape, grid, voxel, deflate):
    out = tmp_path / "acq"
    run_tessera("simulate", out, "--tile-shape", tile_shape, "--grid", grid, "--voxel-size", voxel,
                "--channels", 2, "--jitter", 2.5, "--seed", 7, "--deflate", deflate)
    shape = tuple(int(v) for v in tile_shape.split(","))
    g = tuple(int(v) for v in grid.split(","))
    vox = np.array([float(v) for v in voxel.split(",")])
    n_tiles = int(np.prod(g))

    with h5py.File(out / "ground_truth.h5", "r") as truth:
        true_pos = truth["true_positions_um"][...]
        volumes = [truth[f"ch{c}"][...] for c in range(2)]
    assert true_pos.shape == (n_tiles, len(shape))
    assert volumes[0].dtype == np.uint16
    assert not np.array_equal(volumes[0], volumes[1])  # channels differ

    for t in range(n_tiles):
        with h5py.File(out / f"tile_{t:03d}.h5", "r") as f:
            for c in range(2):
                d = f[f"ch{c}"]
                assert d.dtype == np.uint16
                assert d.shape == shape
                assert (d.compression == "gzip") == (deflate > 0)
                np.testing.assert_array_equal(d.attrs["voxel_size_um"], vox)
                assert d.attrs["tile"][0] == t and d.attrs["channel"][0] == c
                # The stated position is the true one plus at most 2.5 voxels of jitter.
                err_vox = (d.attrs["position_um"] - true_pos[t]) / vox
                assert np.all(np.abs(err_vox) <= 2.5 + 1e-9)
                origin = np.rint(true_pos[t] / vox).astype(int)
                window = tuple(slice(o, o + s) for o, s in zip(origin, shape))
                np.testing.assert_array_equal(d[...], volumes[c][window])
                # A hyperslab that crosses chunk borders reads the same values.
                sub = tuple(slice(s // 3, s - 1) for s in shape)
                np.testing.assert_array_equal(d[sub], volumes[c][window][sub])


def test_simulation_is_deterministic(tmp_path, run_tessera):
    for name in ("a", "b"):
        run_tessera("simulate", tmp_path / name, "--tile-shape", "8,32,32", "--grid", "1,1,2", "--jitter", 3, "--seed", 3)
    for name in ("tile_000.h5", "tile_001.h5", "ground_truth.h5"):
        with h5py.File(tmp_path / "a" / name) as a, h5py.File(tmp_path / "b" / name) as b:
            for key in a:
                np.testing.assert_array_equal(a[key][...], b[key][...])
                for attr in a[key].attrs:
                    np.testing.assert_array_equal(a[key].attrs[attr], b[key].attrs[attr])


def test_bad_arguments_fail_with_a_clear_message(tmp_path, run_tessera):
    r = run_tessera("simulate", tmp_path / "x", "--tile-shape", "8,32", "--grid", "1,1,2", check=False)
    assert r.returncode != 0
    assert "same number of axes" in r.stderr
    r = run_tessera("simulate", tmp_path / "x", "--tile-shape", "8,a", "--grid", "1,1", check=False)
    assert r.returncode != 0
    assert "--tile-shape" in r.stderr
