"""Tessera reads plain HDF5 tiles written by h5py: positions as attributes, or through a JSON manifest."""
import json
import resource
import subprocess

import h5py
import numpy as np
import pytest
import zarr


def write_attribute_tiles(directory, rng):
    """Two tiles side by side in x, two channels each, nested groups, zyx attributes."""
    directory.mkdir()
    data = {}
    for t in range(2):
        with h5py.File(directory / f"tile{t}.h5", "w") as f:
            for c, name in enumerate(["488", "561"]):
                a = rng.integers(0, 65536, size=(6, 40, 50), dtype=np.uint16)
                d = f.create_dataset(f"channel_{name}/stack", data=a, chunks=(3, 16, 16), compression="gzip",
                                     shuffle=True)
                d.attrs["position_um"] = [0.0, 0.0, t * 45 * 0.4]
                d.attrs["voxel_size_um"] = [1.5, 0.4, 0.4]
                d.attrs["channel"] = c
                d.attrs["tile"] = t
                data[(t, c)] = a
    return data


def test_attribute_tiles(tmp_path, run_tessera):
    data = write_attribute_tiles(tmp_path / "tiles", np.random.default_rng(5))
    files = sorted((tmp_path / "tiles").glob("*.h5"))
    s = json.loads(run_tessera("info", *files, "--json").stdout)
    assert s["format"] == "hdf5Attributes"
    assert s["viewCount"] == 4 and s["tiles"] == [0, 1] and s["channels"] == [0, 1]
    assert all(v["shape"] == [6, 40, 50] and v["voxelSizeUm"] == [1.5, 0.4, 0.4] for v in s["views"])
    np.testing.assert_allclose(s["worldLowerUm"], [-0.75, -0.2, -0.2])
    np.testing.assert_allclose(s["worldUpperUm"], [-0.75 + 9, -0.2 + 16, -0.2 + (45 + 50) * 0.4])
    [overlap] = s["overlaps"]
    np.testing.assert_allclose(overlap["extentVoxels"], [6, 40, 5])
    for (t, c), a in data.items():
        out = tmp_path / f"{t}{c}.npy"
        run_tessera("extract", *files, "--tile", t, "--channel", c, "--box", "1:5,3:37,7:49", "-o", out)
        np.testing.assert_array_equal(np.load(out), a[1:5, 3:37, 7:49])


def test_manifest_with_stage_axes_and_float_data(tmp_path, run_tessera):
    rng = np.random.default_rng(9)
    planes = {t: rng.normal(100, 30, size=(32, 48)).astype(np.float32) for t in range(3)}
    with h5py.File(tmp_path / "all.h5", "w") as f:
        for t, a in planes.items():
            f.create_dataset(f"tiles/t{t}", data=a)  # contiguous float32
    # Stage reports x, y with y running against the camera.
    manifest = {
        "tessera_manifest": 1,
        "voxel_size_um": [0.65, 0.65],
        "stage_axes": ["x", "-y"],
        "tiles": [{"file": "all.h5", "dataset": f"tiles/t{t}", "tile": t, "position_um": [t * 40 * 0.65, -5.0]}
                  for t in range(3)],
    }
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    s = json.loads(run_tessera("info", tmp_path / "m.json", "--json").stdout)
    assert s["rank"] == 2 and s["axes"] == ["y", "x"] and s["elementTypes"] == ["float32"]
    for v in s["views"]:
        np.testing.assert_allclose([r[2] for r in v["viewToWorld"]], [5.0, v["tile"] * 40 * 0.65])
    assert [o["tiles"] for o in s["overlaps"]] == [[0, 1], [1, 2]]
    out = tmp_path / "t2.npy"
    run_tessera("extract", tmp_path / "m.json", "--tile", 2, "-o", out)
    np.testing.assert_array_equal(np.load(out), planes[2])


def test_bad_positions_fail_with_one_line(tmp_path, run_tessera):
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        d = f.create_dataset("stack", data=np.zeros((2, 8, 8), np.uint16))
        d.attrs["position_um"] = [0.0, np.nan, 0.0]
        d.attrs["voxel_size_um"] = [1.0, 1.0, 1.0]
    r = run_tessera("info", tmp_path / "bad.h5", check=False)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.h5" in lines[0] and "NaN" in lines[0]
    r = run_tessera("info", tmp_path / "missing.json", check=False)
    assert r.returncode != 0 and "missing.json" in r.stderr and "no such file" in r.stderr


def test_many_tile_files_under_a_low_open_file_limit(tmp_path, tessera_bin):
    """300 tile files (h5py, gzip chunks, positions as attributes, and the same through a manifest)
    fuse exactly with the open-file limits at 64 (soft) and 400 (hard): tessera raises the soft
    limit to the hard one, and gives HDF5's handles on each file back once its views are made (one
    descriptor per file is left)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 400:
        pytest.skip(f"the hard limit on open files is {hard}")
    rng = np.random.default_rng(11)
    rows, cols, n = 15, 20, 8
    mosaic = rng.integers(0, 65536, size=(rows * n, cols * n), dtype=np.uint16)
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    entries = []
    for i in range(rows):
        for j in range(cols):
            name = f"tile_{i:02d}_{j:02d}.h5"
            with h5py.File(tiles / name, "w") as f:
                d = f.create_dataset("img", data=mosaic[i * n:(i + 1) * n, j * n:(j + 1) * n], chunks=(4, 8),
                                     compression="gzip")
                d.attrs["position_um"] = [i * n * 0.5, j * n * 0.5]
                d.attrs["voxel_size_um"] = [0.5, 0.5]
                d.attrs["tile"] = i * cols + j
            entries.append({"file": name, "dataset": "img", "tile": i * cols + j,
                            "position_um": [i * n * 0.5, j * n * 0.5]})
    (tiles / "m.json").write_text(json.dumps({"tessera_manifest": 1, "voxel_size_um": [0.5, 0.5], "tiles": entries}))

    def low_limit():
        # A hard limit of 400 too: without the handles given back, 300 files take about 600.
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 400))

    for inputs, out in [(sorted(tiles.glob("*.h5")), tmp_path / "a.zarr"), ([tiles / "m.json"], tmp_path / "m.zarr")]:
        r = subprocess.run([str(tessera_bin), "fuse", *map(str, inputs), "-o", str(out), "--quiet"],
                           capture_output=True, text=True, preexec_fn=low_limit)
        assert r.returncode == 0, r.stderr
        # Abutting tiles at whole-voxel positions, no overlap: the fused image is the mosaic.
        np.testing.assert_array_equal(zarr.open(str(out / "0"), mode="r")[0], mosaic)  # (c, y, x)
    # A hard limit below the tile count: a clear error naming the file and the fix, exit 74 (I/O).
    r = subprocess.run([str(tessera_bin), "info", *map(str, sorted(tiles.glob("*.h5")))], capture_output=True,
                       text=True, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32)))
    assert r.returncode == 74
    assert "too many open files (this process may have 32)" in r.stderr and "ulimit -Hn" in r.stderr, r.stderr
    assert ".h5: " in r.stderr, r.stderr
