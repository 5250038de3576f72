"""tessera preview: PNGs that Pillow decodes, of the right size, not blank, whose pixels are the
maximum of the corresponding voxels of the level drawn (read with zarr-python) — exactly, in the
16-bit pictures, and through the stated contrast limits in the 8-bit ones."""
import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from PIL import Image

from test_fuse import simulate


def fused(run_tessera, tmp_path, shape, grid, *extra):
    tiles = simulate(run_tessera, tmp_path / "acq", "--tile-shape", shape, "--grid", grid, "--channels", 2,
                     "--seed", 4, "--jitter", 1)
    out = tmp_path / "fused.ome.zarr"
    run_tessera("fuse", *tiles, "-o", out, *extra)
    return out


def projections(level, axes):
    """Per channel, the maximum projections the preview draws (channel axis first)."""
    data = np.asarray(level)
    if "t" in axes:
        data = data[0]
    if data.ndim == 3:  # c, y, x
        return [{"plane": data[c]} for c in range(data.shape[0])]
    return [{"z": data[c].max(axis=0), "y": data[c].max(axis=1), "x": data[c].max(axis=2)}
            for c in range(data.shape[0])]


def check(out, pictures, region=None):
    summary = json.loads((pictures / "preview.json").read_text())
    group = zarr.open_group(str(out), mode="r")
    level = group[str(summary["level"])]
    axes = ["c", "z", "y", "x"][-level.ndim:]
    if region is not None:
        level = np.asarray(level)[(slice(None),) + region]
    expected = projections(level, axes)
    assert len(summary["files"]) > 0
    for f in summary["files"]:
        img = Image.open(pictures / f["path"])
        pixels = np.asarray(img)
        first = expected[0][f["projection"]]
        rows = f["rowsPerVoxel"]
        assert pixels.shape[:2] == (first.shape[0] * rows, first.shape[1]), f
        assert pixels.std() > 0, f"{f['path']} is blank"
        if f.get("channel") is None:
            assert img.mode == "RGB"
            continue
        mip = np.repeat(expected[f["channel"]][f["projection"]], rows, axis=0).astype(np.float64)
        if f["bitDepth"] == 16:
            assert img.mode.startswith("I")
            assert np.array_equal(pixels.astype(np.int64), mip.astype(np.int64)), f["path"]
        else:
            limits = summary["channels"][f["channel"]]
            # round half up, as Tessera does (numpy.rint would round halves to even)
            want = np.floor(255 * np.clip((mip - limits["low"]) / (limits["high"] - limits["low"]), 0, 1) + 0.5)
            keep = np.ones(pixels.shape, bool)
            bar = f.get("scaleBar")
            if bar:  # the bar and its label are drawn over the bottom right
                keep[max(0, bar["y"] - 40):, max(0, bar["x"] - 80):] = False
            assert np.array_equal(pixels[keep], want[keep].astype(np.uint8)), f["path"]
    return summary


def test_3d_projections_from_a_pyramid_level(tmp_path, run_tessera):
    out = fused(run_tessera, tmp_path, "24,90,100", "1,2,2", "--pyramid", 3)
    pictures = tmp_path / "pictures"
    run_tessera("preview", out, "-o", pictures, "--max-size", 100, "--sixteen-bit")
    summary = check(out, pictures)
    assert summary["level"] > 0  # level 0 does not fit 100 voxels: never drawn whole
    assert {f["projection"] for f in summary["files"]} == {"z", "y", "x"}
    assert any(f.get("scaleBar") for f in summary["files"])


def test_2d_and_a_full_resolution_box(tmp_path, run_tessera):
    out = fused(run_tessera, tmp_path, "120,130", "2,2", "--pyramid", 2)
    pictures = tmp_path / "box"
    run_tessera("preview", out, "-o", pictures, "--box", "10:90,20:140", "--sixteen-bit")
    summary = check(out, pictures, region=(slice(10, 90), slice(20, 140)))
    assert summary["level"] == 0 and summary["lower"] == [10, 20] and summary["upper"] == [90, 140]


def test_errors_name_the_problem(tmp_path, run_tessera):
    out = fused(run_tessera, tmp_path, "120,130", "2,2")
    for args, message in [(["--box", "0:5000,0:10"], "--box"), (["--percentiles", "50,10"], "--percentiles")]:
        r = run_tessera("preview", out, "-o", tmp_path / "p", *args, check=False)
        assert r.returncode == 64 and message in r.stderr, r.stderr
    (tmp_path / "plain").mkdir()
    r = run_tessera("preview", tmp_path / "plain", "-o", tmp_path / "p", check=False)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_layout_draws_every_link_and_marks_the_rejected(tmp_path, run_tessera):
    sample = Path(__file__).resolve().parents[2] / "Datasets" / "sample" / "dataset.xml"
    report = tmp_path / "links.json"
    run_tessera("refine-positions", sample, "-o", tmp_path / "r.xml", "--report", report, "--quiet")
    links = json.loads(report.read_text())["links"]
    r = run_tessera("preview", sample, "--layout", "--report", report, "-o", tmp_path / "layout.png")
    svg = (tmp_path / "layout.svg").read_text()
    drawn = [line for line in svg.splitlines() if line.startswith('<line class="link')]
    assert len(drawn) == len(links)
    rejected = [line for line in drawn if 'class="link rejected"' in line]
    assert len(rejected) == sum(not l["accepted"] for l in links) >= 1
    assert all("stroke-dasharray" in line for line in rejected)
    assert not any("stroke-dasharray" in line for line in drawn if 'class="link accepted"' in line)
    assert svg.count('class="rejected-label"') == len(rejected)
    assert svg.count('class="tile refined"') == svg.count('class="tile stated"') == 4
    img = Image.open(tmp_path / "layout.png")
    assert img.mode == "RGB" and np.asarray(img).std() > 0
    assert "6 links (1 rejected)" in r.stdout
    # Without a report: the overlap graph, nothing rejected.
    run_tessera("preview", sample, "--layout", "-o", tmp_path / "plain.png")
    plain = (tmp_path / "plain.svg").read_text()
    assert plain.count('<line class="link accepted"') == len(links) and "rejected" not in plain


def test_narrow_boxes_and_images_without_a_channel_axis(tmp_path, run_tessera):
    """A tall, narrow --box (the scale bar's label does not fit: left out, no crash), and an OME-Zarr
    written by zarr-python with axes y, x only (no c axis, as OME-NGFF allows)."""
    out = fused(run_tessera, tmp_path, "120,130", "2,2")
    run_tessera("preview", out, "-o", tmp_path / "narrow", "--box", "0:200,100:150", "--sixteen-bit")
    check(out, tmp_path / "narrow", region=(slice(0, 200), slice(100, 150)))
    plain = tmp_path / "plain.ome.zarr"
    group = zarr.open_group(str(plain), mode="w", zarr_format=3)
    data = (np.arange(60 * 70, dtype=np.uint16).reshape(60, 70) % 251) * 3
    group.create_array("0", data=data, chunks=(32, 32))
    group.attrs["ome"] = {"version": "0.5", "multiscales": [{
        "axes": [{"name": "y", "type": "space", "unit": "micrometer"}, {"name": "x", "type": "space", "unit": "micrometer"}],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [0.5, 0.5]}]}]}]}
    run_tessera("preview", plain, "-o", tmp_path / "p", "--sixteen-bit")
    raw = np.asarray(Image.open(tmp_path / "p" / "mip-channel-0-16bit.png")).astype(np.int64)
    assert np.array_equal(raw, data.astype(np.int64))
