"""`tessera bench --tiny --json`: every stage of both jobs for both ranks, with positive figures, on
2D and 3D tilings of equal voxel count; the scratch folder is removed afterwards."""
import json
import os

import pytest

REFINE_STAGES = ["refine plan", "refine read+decode", "phase correlation", "global solve", "refine whole process"]
FUSE_STAGES = ["plan", "read+decode", "resample+blend", "encode+write", "pyramid", "metadata", "fuse whole process"]
WITH_VOXELS = ["refine read+decode", "phase correlation", "refine whole process", "read+decode", "resample+blend",
               "encode+write", "pyramid", "fuse whole process"]


@pytest.mark.parametrize("layout,rotated", [("chunked-gzip", False), ("bdv-blocks", True)])
def test_tiny_bench_json(run_tessera, tmp_path, layout, rotated):
    result = run_tessera("bench", "--tiny", "--json", "--threads", "1,2", "--input-layout", layout,
                         "--scratch", tmp_path, *(["--rotated"] if rotated else []))
    report = json.loads(result.stdout)
    d2, d3 = report["datasets"]["2d"], report["datasets"]["3d"]
    assert d2["voxels"] == d3["voxels"] == 9 * 16 * 64 * 64 * 2
    assert d2["tile_shape"] == [256, 256] and d3["tile_shape"] == [16, 64, 64]
    assert d2["tiles"] == d3["tiles"] == 9
    assert report["input_layout"] == layout and report["rotated"] == rotated
    assert report["machine"]["cores"] >= 1 and report["machine"]["memory_bytes"] > 0
    runs = {(r["rank"], r["threads"]): r["stages"] for r in report["runs"]}
    assert set(runs) == {(2, 1), (3, 1), (2, 2), (3, 2)}
    for key, stages in runs.items():
        for name in REFINE_STAGES + FUSE_STAGES:
            assert name in stages, f"{key}: no {name}"
            s = stages[name]
            assert s["min_seconds"] > 0 and s["median_seconds"] >= s["min_seconds"], f"{key} {name}: {s}"
            assert s["peak_rss_bytes"] > 0
            if name in WITH_VOXELS:
                assert s["voxels"] > 0 and s["mvoxel_s"] > 0 and s["mvoxel_s_per_thread"] > 0, f"{key} {name}: {s}"
        # Decoded input voxels: each tile's registered channel once at least; fusion reads every voxel once.
        assert stages["read+decode"]["voxels"] == d3["voxels"]
        assert stages["resample+blend"]["voxels"] == stages["encode+write"]["voxels"]
    for r in report["ratios"]:
        assert set(REFINE_STAGES + FUSE_STAGES) <= set(r["stages"])
        assert all(v > 0 for v in r["stages"].values())
    # Nothing left behind.
    assert os.listdir(tmp_path) == []
