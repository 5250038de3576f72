"""tessera refine-positions end to end: BigStitcher XML in, XML out with a named transform, JSON report,
positions within 0.25 voxel of the truth; manifest output for HDF5 tiles."""
import json
import xml.etree.ElementTree as ET

import h5py
import numpy as np


def positions_rms(run_tessera, xml, truth, vox):
    info = json.loads(run_tessera("info", xml, "--json").stdout)
    pos = np.array([[row[3] for row in v["viewToWorld"]] for v in info["views"] if v["channel"] == 0])
    err = (pos - truth) / vox
    err -= err.mean(axis=0)
    return np.sqrt((err ** 2).sum(axis=1).mean()), info


def test_bdv_project_is_refined_and_written_back(tmp_path, run_tessera):
    run_tessera("simulate", tmp_path / "p", "--format", "bdv", "--levels", 2, "--tile-shape", "16,100,110", "--grid", "1,2,3",
                "--channels", 2, "--voxel-size", "2.0,0.5,0.5", "--overlap", 0.25, "--jitter", 4, "--seed", 31)
    xml = tmp_path / "p" / "dataset.xml"
    out = tmp_path / "refined.xml"
    r = run_tessera("refine-positions", xml, "-o", out, "--report", tmp_path / "links.json")
    assert "links accepted" in r.stdout
    # Off a terminal, progress is whole lines (a log gets no carriage returns), ending with the total.
    assert "\r" not in r.stderr and r.stderr.endswith("\n"), repr(r.stderr)
    progress = [line for line in r.stderr.splitlines() if line.startswith("pairs ")]
    assert progress and progress[-1].split()[1].split("/")[0] == progress[-1].split()[1].split("/")[1], r.stderr
    report = json.loads((tmp_path / "links.json").read_text())
    assert report["accepted"] >= 7 and report["rmsResidualVoxels"] < 0.5
    assert all({"tiles", "overlapVoxels", "accepted"} <= set(link) for link in report["links"])
    # The new transform is first in every registration whose tile moved; the rest is kept.
    for reg in ET.parse(out).getroot().iter("ViewRegistration"):
        names = [vt.findtext("Name") for vt in reg.iter("ViewTransform")]
        assert names[-2:] == ["Translation", "calibration"]
        assert names[0] in ("Tessera refine-positions", "Translation")
    with h5py.File(tmp_path / "p" / "ground_truth.h5", "r") as g:
        truth = g["true_positions_um"][...]
    vox = np.array([2.0, 0.5, 0.5])
    rms, info = positions_rms(run_tessera, out, truth, vox)
    assert rms <= 0.25
    # --downsample 2 reads the stored 1x2x2 pyramid level: still well under a voxel.
    run_tessera("refine-positions", xml, "-o", tmp_path / "ds.xml", "--downsample", 2, "--quiet")
    assert positions_rms(run_tessera, tmp_path / "ds.xml", truth, vox)[0] <= 0.5
    # Both channels of a tile moved together.
    by_tile = {}
    for v in info["views"]:
        by_tile.setdefault(v["tile"], []).append(v["viewToWorld"])
    assert all(a == b for a, b in by_tile.values())


def test_hdf5_tiles_give_a_manifest_and_dry_run_lists_pairs(tmp_path, run_tessera):
    run_tessera("simulate", tmp_path / "t", "--tile-shape", "90,100", "--grid", "2,2", "--channels", 1,
                "--jitter", 3, "--seed", 32)
    tiles = sorted((tmp_path / "t").glob("tile_*.h5"))
    r = run_tessera("refine-positions", *tiles, "--dry-run")
    assert "6 pairs" in r.stdout
    out = tmp_path / "refined.json"
    run_tessera("refine-positions", *tiles, "-o", out, "--quiet")
    manifest = json.loads(out.read_text())
    assert len(manifest["tiles"]) == 4 and "affine" in manifest["tiles"][0]
    # The refined manifest is a dataset like any other: it fuses.
    run_tessera("fuse", out, "-o", tmp_path / "f.zarr", "--quiet")
    r = run_tessera("refine-positions", *tiles, "-o", out, check=False)
    assert r.returncode != 0 and "exists" in r.stderr
    r = run_tessera("refine-positions", *tiles, "-o", tmp_path / "x.json", "--channel", 5, check=False)
    assert r.returncode != 0 and "no channel 5" in r.stderr
