"""tessera fuse end to end: exact against ground truth, validated by zarr-python and ome-zarr-models,
deterministic across threads, resumable after a kill, clear errors."""
import json
import os
import signal
import subprocess
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from ome_zarr_models import open_ome_zarr
from ome_zarr_models.exceptions import ValidationWarning
import ome_zarr_models.v04 as v04
import ome_zarr_models.v05 as v05


def simulate(run_tessera, out, *args):
    run_tessera("simulate", out, *map(str, args))
    return sorted(Path(out).glob("tile_*.h5"))


def chunk_files(root):
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".tessera" not in p.parts and p.name != "zarr.json" and not p.name.startswith(".z")}


@pytest.mark.parametrize("fmt,version", [(3, "0.5"), (2, "0.4")])
def test_fused_output_is_exact_and_valid(tmp_path, run_tessera, fmt, version):
    tiles = simulate(run_tessera, tmp_path / "acq", "--tile-shape", "12,64,80", "--grid", "1,2,2", "--channels", 2,
                     "--voxel-size", "2.0,0.5,0.5", "--jitter", 0, "--seed", 4)
    out = tmp_path / "fused.ome.zarr"
    r = run_tessera("fuse", *tiles, "-o", out, "--zarr-format", fmt, "--pyramid", 2, "--chunks", "8,32,32", "--quiet")
    assert "fused" in r.stdout
    with warnings.catch_warnings():
        warnings.simplefilter("error", ValidationWarning)
        img = open_ome_zarr(out)
        assert isinstance(img, v05.Image if version == "0.5" else v04.Image)
    fused = zarr.open_array(out / "0", mode="r")[...]
    with h5py.File(tmp_path / "acq" / "ground_truth.h5", "r") as g:
        truth = np.stack([g["ch0"][...], g["ch1"][...]])
    assert fused.shape == truth.shape and fused.dtype == np.uint16
    np.testing.assert_array_equal(fused, truth)  # integer positions, equal voxel sizes: exact
    attrs = zarr.open_group(out, mode="r").attrs.asdict()
    prov = attrs["tessera"]
    assert prov["status"] == "complete" and prov["parameters"]["blend"] == "linear"
    assert len(prov["views"]) == 8
    ms = attrs["ome"]["multiscales"][0] if fmt == 3 else attrs["multiscales"][0]
    np.testing.assert_allclose(ms["datasets"][0]["coordinateTransformations"][0]["scale"], [1, 2.0, 0.5, 0.5])
    np.testing.assert_allclose(ms["datasets"][0]["coordinateTransformations"][1]["translation"], [0, 0, 0, 0], atol=1e-9)
    # The image is named after the output (napari shows it), not after one of its tiles.
    omero = attrs["ome"]["omero"] if fmt == 3 else attrs["omero"]
    assert ms["name"] == omero["name"] == "fused"


def test_2d_fusion_with_max_blending_and_sharding(tmp_path, run_tessera):
    tiles = simulate(run_tessera, tmp_path / "acq", "--tile-shape", "90,110", "--grid", "3,2", "--channels", 1,
                     "--jitter", 0, "--seed", 6)
    out = tmp_path / "f.zarr"
    run_tessera("fuse", *tiles, "-o", out, "--blend", "max", "--chunks", "32,32", "--shard", "64,64", "--pyramid", 1,
                "--quiet")
    with h5py.File(tmp_path / "acq" / "ground_truth.h5", "r") as g:
        truth = g["ch0"][...]
    np.testing.assert_array_equal(zarr.open_array(out / "0", mode="r")[0], truth)
    assert json.loads((out / "0" / "zarr.json").read_text())["codecs"][0]["name"] == "sharding_indexed"


def test_thread_count_does_not_change_a_byte(tmp_path, run_tessera):
    tiles = simulate(run_tessera, tmp_path / "acq", "--tile-shape", "10,60,70", "--grid", "1,2,2", "--jitter", 2.5,
                     "--seed", 8)
    outs = []
    for threads in (1, 2, 3):
        out = tmp_path / f"t{threads}.zarr"
        run_tessera("fuse", *tiles, "-o", out, "--threads", threads, "--chunks", "4,16,16", "--pyramid", 2, "--quiet")
        outs.append(chunk_files(out))
    assert len(outs[0]) > 20
    assert outs[0] == outs[1] == outs[2]


def signal_when_logged(proc, output, number, blocks=40):
    """Sends `number` to `proc` once its progress log under `output` lists `blocks` finished blocks."""
    progress = output / ".tessera" / "progress"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        lines = sum(p.read_text().count("\n") for p in progress.glob("*.log")) if progress.exists() else 0
        if lines >= blocks:
            proc.send_signal(number)
            return
        time.sleep(0.005)


def interruptible_case(tmp_path, run_tessera, threads):
    """A fusion with thousands of small chunks (fuse arguments without -o) and its uninterrupted output."""
    tiles = simulate(run_tessera, tmp_path / "acq", "--tile-shape", "24,128,128", "--grid", "1,3,3", "--channels", 2,
                     "--jitter", 2, "--seed", 9, "--deflate", 0)
    args = [*map(str, tiles), "--threads", str(threads), "--chunks", "4,16,16", "--pyramid", "2", "--quiet"]
    clean = tmp_path / "clean.zarr"
    run_tessera("fuse", *args, "-o", clean)
    return args, clean


def test_resume_after_kill_gives_identical_output(tmp_path, run_tessera, tessera_bin):
    args, clean = interruptible_case(tmp_path, run_tessera, threads=1)
    broken = tmp_path / "broken.zarr"
    proc = subprocess.Popen([str(tessera_bin), "fuse", *args, "-o", str(broken)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    signal_when_logged(proc, broken, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the fusion finished before it could be interrupted"
    # The interrupted output is not a finished image; the dead process's lock is left behind.
    assert "ome" not in json.loads((broken / "zarr.json").read_text())["attributes"]
    lock = tmp_path / ".broken.zarr.tessera-lock"
    assert json.loads(lock.read_text())["pid"] == proc.pid
    # Without --resume it is refused (after taking the dead process's lock over, and giving it up).
    refused = run_tessera("fuse", *args, "-o", broken, check=False)
    assert refused.returncode != 0 and "--resume" in refused.stderr
    run_tessera("fuse", *args, "-o", broken, "--resume")
    assert not lock.exists()
    assert chunk_files(broken) == chunk_files(clean)
    assert json.loads((broken / "zarr.json").read_text())["attributes"]["tessera"]["status"] == "complete"
    # Resuming with other settings is refused.
    other = run_tessera("fuse", *args, "-o", broken, "--resume", "--codec", "zstd", check=False)
    assert other.returncode != 0 and "different settings" in other.stderr


def test_sigterm_stops_at_a_chunk_boundary_and_resume_is_identical(tmp_path, run_tessera, tessera_bin):
    args, clean = interruptible_case(tmp_path, run_tessera, threads=2)
    stopped = tmp_path / "stopped.zarr"
    proc = subprocess.Popen([str(tessera_bin), "fuse", *args, "-o", str(stopped)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    signal_when_logged(proc, stopped, signal.SIGTERM)
    sent = time.time()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert time.time() - sent < 5, "the stop took more than a few seconds"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "SIGTERM" in lines[0] and "--resume" in lines[0], err
    assert "ome" not in json.loads((stopped / "zarr.json").read_text())["attributes"]
    run_tessera("fuse", *args, "-o", stopped, "--resume")
    assert chunk_files(stopped) == chunk_files(clean)


def test_one_writer_per_output(tmp_path, run_tessera, tessera_bin):
    args, clean = interruptible_case(tmp_path, run_tessera, threads=1)
    out = tmp_path / "busy.zarr"
    lock = tmp_path / ".busy.zarr.tessera-lock"
    proc = subprocess.Popen([str(tessera_bin), "fuse", *args, "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "zarr.json").exists():
        time.sleep(0.005)
    # A second writer (a resume, or a replacement) is refused while the first runs: status 75.
    for extra in (["--resume"], ["--overwrite"]):
        second = run_tessera("fuse", *args, "-o", out, *extra, check=False)
        assert second.returncode == 75, (extra, second.returncode, second.stderr)
        assert f"is being written by fuse (process {proc.pid} on " in second.stderr, second.stderr
    assert proc.poll() is None, "the fusion finished before the second writer tried (machine too fast?)"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130 and not lock.exists()
    run_tessera("fuse", *args, "-o", out, "--resume")
    assert chunk_files(out) == chunk_files(clean)
    # Another host's lock: refused while it is refreshed, taken over once 5 minutes stale.
    lock.write_text(json.dumps({"host": "elsewhere.example", "pid": 1, "started": 0, "command": "fuse",
                                "token": "t"}))
    refused = run_tessera("fuse", *args, "-o", out, "--overwrite", check=False)
    assert refused.returncode == 75 and "process 1 on elsewhere.example" in refused.stderr, refused.stderr
    old = time.time() - 301
    os.utime(lock, (old, old))
    run_tessera("fuse", *args, "-o", out, "--overwrite")
    assert not lock.exists() and chunk_files(out) == chunk_files(clean)


def test_a_second_signal_stops_at_once(tmp_path, run_tessera, tessera_bin):
    # One output chunk per channel, so the first block takes long enough for a second signal to
    # arrive while it is being fused: the process then ends at once, without the graceful stop's line.
    # The first signal must land while that block is in flight (not before it starts, when the
    # graceful stop is immediate): tried after growing delays until it does.
    tiles = simulate(run_tessera, tmp_path / "acq", "--tile-shape", "64,256,256", "--grid", "1,2,2", "--channels", 2,
                     "--seed", 9, "--deflate", 0)
    errors = []
    for attempt, delay in enumerate((0.05, 0.15, 0.3, 0.5)):
        out = tmp_path / f"o{attempt}.zarr"
        proc = subprocess.Popen([str(tessera_bin), "fuse", *map(str, tiles), "-o", str(out), "--threads", "1",
                                 "--chunks", "64,512,512", "--pyramid", "1", "--quiet"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline and not (out / "zarr.json").exists():
            time.sleep(0.002)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        if "interrupted by" not in err:
            return
        errors.append(err.strip())
    raise AssertionError(f"a graceful stop every time (was the first block ever in flight?): {errors}")


def test_dry_run_and_errors(tmp_path, run_tessera):
    tiles = simulate(run_tessera, tmp_path / "acq", "--tile-shape", "8,40,40", "--grid", "1,1,2", "--seed", 1)
    r = run_tessera("fuse", *tiles, "-o", tmp_path / "x.zarr", "--dry-run")
    assert "chunks" in r.stdout and "views/block" in r.stdout and "memory" in r.stdout
    assert not (tmp_path / "x.zarr").exists()
    for bad, message in [(["--channels", "7"], "no channel 7"), (["--bbox", "0:1,0:1"], "--bbox"),
                         (["--memory", "1M"], "--memory"), (["--shard", "8,40,40", "--zarr-format", "2"], "--shard")]:
        r = run_tessera("fuse", *tiles, "-o", tmp_path / "y.zarr", *bad, check=False)
        assert r.returncode != 0, bad
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (bad, r.stderr)
    (tmp_path / "notzarr").mkdir()
    (tmp_path / "notzarr" / "precious.txt").write_text("keep me")
    r = run_tessera("fuse", *tiles, "-o", tmp_path / "notzarr", "--overwrite", check=False)
    assert r.returncode != 0 and "not a Zarr group" in r.stderr
    assert (tmp_path / "notzarr" / "precious.txt").exists()


def test_json_summaries(tmp_path, run_tessera):
    """--json: one JSON object on stdout, whose numbers agree with the output and the report."""
    tiles = simulate(run_tessera, tmp_path / "acq", "--tile-shape", "8,40,40", "--grid", "1,1,2", "--seed", 2)
    out = tmp_path / "x.ome.zarr"
    s = json.loads(run_tessera("fuse", *tiles, "-o", out, "--json", "--quiet", "--pyramid", 2).stdout)
    level0 = zarr.open_array(str(out / "0"), mode="r")
    assert s["voxels"] == int(np.prod(level0.shape)) and s["pyramidLevels"] == 1 and s["output"] == str(out)
    assert 0 < s["fusionSeconds"] <= s["wholeJobSeconds"] and s["chunksWritten"] >= 1
    report = tmp_path / "links.json"
    r = json.loads(run_tessera("refine-positions", *tiles, "-o", tmp_path / "r.json", "--report", report,
                               "--json", "--quiet").stdout)
    links = json.loads(report.read_text())["links"]
    assert r["pairs"] == len(links) and r["accepted"] == sum(l["accepted"] for l in links)


def test_resume_of_a_finished_zarr_v2_output(tmp_path, run_tessera):
    """Zarr v2 arrays have no dimension names: a resumed v2 output compares equal to the plan
    (it was refused as "differs from the requested layout") and stays byte-identical."""
    tiles = simulate(run_tessera, tmp_path / "acq", "--tile-shape", "8,40,40", "--grid", "1,1,2", "--seed", 3)
    out = tmp_path / "v2.ome.zarr"
    run_tessera("fuse", *tiles, "-o", out, "--zarr-format", 2, "--quiet")
    before = chunk_files(out)
    run_tessera("fuse", *tiles, "-o", out, "--zarr-format", 2, "--quiet", "--resume")
    assert chunk_files(out) == before
