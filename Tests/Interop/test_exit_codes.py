"""Exit status by kind of failure (README, `tessera --help`): 64 usage, 65 bad input data, 74 I/O
(75, busy, is tested in test_fuse.py::test_one_writer_per_output),
each with one `Error:` line naming the file or option; 0 for success, help and version. (70,
internal, is a bug and has no trigger: FailureKind's mapping is unit-tested in Swift; 130,
interrupted, is tested here for bench and in test_fuse.py for fuse.)"""
import json
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "Datasets" / "sample" / "dataset.xml"


def run(tessera_bin, *args):
    return subprocess.run([str(tessera_bin), *map(str, args)], capture_output=True, text=True)


def test_usage_errors_exit_64(tessera_bin, tmp_path):
    for args in (["fuse", "--bogus"], ["fuse", SAMPLE, "-o", tmp_path / "o.zarr", "--threads", "0"],
                 ["refine-positions", SAMPLE], ["fuse", SAMPLE, "-o", tmp_path / "c.zarr", "--channels", "7"]):
        r = run(tessera_bin, *args)
        assert r.returncode == 64, (args, r.returncode, r.stderr)
        assert "Error:" in r.stderr
    # An existing output without --overwrite or --resume is a usage error too.
    out = tmp_path / "f.ome.zarr"
    assert run(tessera_bin, "fuse", SAMPLE, "-o", out, "--quiet").returncode == 0
    r = run(tessera_bin, "fuse", SAMPLE, "-o", out, "--quiet")
    assert r.returncode == 64 and "--overwrite" in r.stderr and str(out) in r.stderr


def test_bad_input_exits_65(tessera_bin, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"tiles": [{"file": "a.h5"}]}))
    r = run(tessera_bin, "info", bad)
    assert r.returncode == 65 and "bad.json" in r.stderr and "dataset" in r.stderr, r.stderr
    r = run(tessera_bin, "info", tmp_path / "missing.xml")
    assert r.returncode == 65 and "missing.xml" in r.stderr
    truncated = tmp_path / "t.xml"
    truncated.write_text(SAMPLE.read_text()[:200])
    assert run(tessera_bin, "info", truncated).returncode == 65


def test_io_failure_exits_74(tessera_bin, tmp_path):
    # A path through a regular file cannot be created (root cannot either, unlike a permission test).
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run(tessera_bin, "fuse", SAMPLE, "-o", blocker / "out.ome.zarr", "--quiet")
    assert r.returncode == 74, (r.returncode, r.stderr)
    assert "cannot create directory" in r.stderr and "not a directory" in r.stderr.lower()
    r = run(tessera_bin, "refine-positions", SAMPLE, "-o", blocker / "refined.xml")
    assert r.returncode == 74 and "cannot write" in r.stderr, (r.returncode, r.stderr)
    assert "pairs" not in r.stderr, "refine-positions registered before finding it cannot write"
    r = run(tessera_bin, "refine-positions", SAMPLE, "-o", tmp_path / "r.xml", "--report", blocker / "links.json")
    assert r.returncode == 74 and "links.json: cannot write here" in r.stderr and "pairs" not in r.stderr, r.stderr


def test_free_disk_space_is_checked_before_work(tessera_bin, tmp_path):
    # The plan states the output's uncompressed size and the free space where it would go.
    r = run(tessera_bin, "fuse", SAMPLE, "-o", tmp_path / "d.ome.zarr", "--dry-run")
    assert r.returncode == 0
    disk = [line for line in r.stdout.splitlines() if line.startswith("disk")]
    assert len(disk) == 1 and "uncompressed (all levels)" in disk[0] and f"free at {tmp_path}" in disk[0], r.stdout
    # /proc reports no free space: --strict refuses before writing anything (I/O, 74); without it a
    # warning precedes the attempt, which then fails creating the output.
    r = run(tessera_bin, "fuse", SAMPLE, "-o", "/proc/tessera-test.ome.zarr", "--strict", "--quiet")
    assert r.returncode == 74, (r.returncode, r.stderr)
    assert r.stderr.startswith("Error: /proc/tessera-test.ome.zarr: the output takes up to ") and "0 B free" in r.stderr
    assert "warning" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run(tessera_bin, "fuse", SAMPLE, "-o", "/proc/tessera-test.ome.zarr", "--quiet")
    assert r.returncode == 74 and "warning: /proc/tessera-test.ome.zarr: the output takes up to" in r.stderr, r.stderr
    assert "--strict refuses" in r.stderr


def test_success_help_and_version_exit_0(tessera_bin):
    for args in (["--version"], ["--help"], ["fuse", "--help"]):
        assert run(tessera_bin, *args).returncode == 0
    text = " ".join(run(tessera_bin, "--help").stdout.split())
    assert "Exit status: 0 success, 64 usage error" in text and "75 busy (another process is writing" in text


def test_sigint_stops_bench_and_removes_its_scratch(tessera_bin, tmp_path):
    # The fuse case (stop at a chunk boundary, then --resume) is in test_fuse.py.
    proc = subprocess.Popen([str(tessera_bin), "bench", "--tiny", "--scratch", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60  # the scratch folder appears after the handler is installed
    while time.time() < deadline and proc.poll() is None and not any(tmp_path.iterdir()):
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (130, 0), err  # 0 only if it finished before the signal
    if proc.returncode == 130:
        assert "interrupted by SIGINT" in err
    assert list(tmp_path.iterdir()) == []
