"""One output written by many processes: mpirun, parts started by hand, sharding, a killed part and its
resume, damage found by `tessera verify`, duplicate and overlapping parts, threads per process."""
import json
import os
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from test_fuse import chunk_files, signal_when_logged, simulate

MPIRUN = shutil.which("mpirun")


def dataset(tmp_path, run_tessera):
    return simulate(run_tessera, tmp_path / "acq", "--tile-shape", "24,96,96", "--grid", "1,2,3", "--channels", 2,
                    "--jitter", 2, "--seed", 14)


def fuse_args(tiles, *extra):
    return [*map(str, tiles), "--chunks", "8,16,16", "--pyramid", "3", "--quiet", *map(str, extra)]


def fuse_in(folder, run_tessera, tiles, *extra):
    """`tessera fuse TILES -o out.zarr` run inside `folder` (so every run records the same command)."""
    folder.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return run_tessera("fuse", *fuse_args(tiles, *extra), "-o", "out.zarr")
    finally:
        os.chdir(cwd)


def group_attributes(out):
    """The group's attributes without what names the output: the recorded command, and the image's
    name (the name of the output it was first fused into: a copy keeps it; test_fuse checks it)."""
    attributes = json.loads((Path(out) / "zarr.json").read_text())["attributes"]
    attributes["tessera"].pop("command")
    ome = attributes.get("ome", attributes)
    assert ome["multiscales"][0].pop("name") == ome["omero"].pop("name")
    return attributes


def assert_same_output(a, b):
    assert chunk_files(a) == chunk_files(b)
    for level in ("0", "1", "2"):
        assert (Path(a) / level / "zarr.json").read_bytes() == (Path(b) / level / "zarr.json").read_bytes()
        np.testing.assert_array_equal(zarr.open_array(str(Path(a) / level), mode="r")[...],
                                      zarr.open_array(str(Path(b) / level), mode="r")[...])
    assert group_attributes(a) == group_attributes(b)


def verify(run_tessera, out):
    result = run_tessera("verify", out, "--json", check=False)
    return result.returncode, json.loads(result.stdout)


@pytest.fixture
def case(tmp_path, run_tessera):
    tiles = dataset(tmp_path, run_tessera)
    single = tmp_path / "single.zarr"
    run_tessera("fuse", *fuse_args(tiles), "-o", single)
    assert verify(run_tessera, single)[0] == 0
    return tiles, single


@pytest.mark.skipif(MPIRUN is None, reason="mpirun (Debian openmpi-bin) is not installed")
def test_mpirun_gives_the_single_process_bytes(tmp_path, run_tessera, tessera_bin, case):
    tiles, _ = case
    fuse_in(tmp_path / "one", run_tessera, tiles)
    single = tmp_path / "one" / "out.zarr"
    (tmp_path / "mpi").mkdir()
    out = tmp_path / "mpi" / "out.zarr"
    run = subprocess.run([MPIRUN, "-np", "3", "--oversubscribe", "--allow-run-as-root", str(tessera_bin), "fuse",
                          *fuse_args(tiles, "--threads", 1), "-o", "out.zarr"], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path / "mpi")
    assert run.returncode == 0, run.stderr
    # Three journals, one per rank, each finished; the last rank to finish finalized the output.
    journals = [p.read_text() for p in (out / ".tessera" / "progress").glob("*.log")]
    parts = sorted(j.splitlines()[0].split("part=")[1].split()[0] for j in journals if "part=finalize" not in j)
    assert parts == ["0/3", "1/3", "2/3"]
    assert all(j.endswith("done\n") for j in journals if "part=finalize" not in j)
    assert verify(run_tessera, out)[0] == 0
    assert_same_output(single, out)
    # The same command line in both runs: the group metadata is byte-identical too.
    assert (single / "zarr.json").read_bytes() == (out / "zarr.json").read_bytes()


@pytest.mark.parametrize("shard", [None, "16,32,32"])
def test_parts_by_hand_give_the_single_process_bytes(tmp_path, run_tessera, case, shard):
    tiles, single = case
    extra = ["--shard", shard] if shard else []
    if shard:
        single = tmp_path / "single-sharded.zarr"
        run_tessera("fuse", *fuse_args(tiles, *extra), "-o", single)
    out = tmp_path / "parts.zarr"
    dry = run_tessera("fuse", *fuse_args(tiles, *extra), "-o", out, "--dry-run", "--part-count", 4).stdout
    assert "parts       4:" in dry and "predicted work of the largest part / the mean" in dry
    for i in (2, 0, 3):
        result = run_tessera("fuse", *fuse_args(tiles, *extra), "-o", out, "--part", f"{i}/4", "--json")
        summary = json.loads(result.stdout)
        assert summary["part"] == f"{i}/4" and not summary["finalized"]
    # Finalizing by hand before the last part is refused, naming it.
    early = run_tessera("finalize", out, check=False)
    assert early.returncode == 64 and "part 1 of 4 has not finished (1 never started)" in early.stderr, early.stderr
    code, report = verify(run_tessera, out)
    assert code == 65 and not report["finalized"] and report["missing"]
    last = json.loads(run_tessera("fuse", *fuse_args(tiles, *extra), "-o", out, "--part", "1/4", "--json").stdout)
    assert last["finalized"]
    assert "already finalized" in run_tessera("finalize", out).stdout
    assert verify(run_tessera, out)[0] == 0
    assert_same_output(single, out)


def test_a_killed_part_is_named_and_resumed(tmp_path, run_tessera, tessera_bin, case):
    tiles, single = case
    out = tmp_path / "killed.zarr"
    args = fuse_args(tiles, "--threads", 1)
    run_tessera("fuse", *args, "-o", out, "--part", "0/2")
    proc = subprocess.Popen([str(tessera_bin), "fuse", *args, "-o", str(out), "--part", "1/2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = sum(p.read_text().count("\n") for p in (out / ".tessera" / "progress").glob("*.log"))
    signal_when_logged(proc, out, signal.SIGKILL, blocks=done + 150)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the part finished before it could be killed"
    code, report = verify(run_tessera, out)
    assert code == 65 and report["missing"] and "part 1 of 2 has not finished" in report["parts"]
    assert "never started" not in report["parts"]
    assert all(name.startswith("0/c/") for name in report["missing"])
    finalize = run_tessera("finalize", out, check=False)
    assert finalize.returncode == 64 and report["missing"][0] in finalize.stderr
    # Its lock is left behind (its process is dead: taken over); the rerun skips what was recorded.
    resumed = json.loads(run_tessera("fuse", *args, "-o", out, "--part", "1/2", "--resume", "--json").stdout)
    assert resumed["finalized"] and 0 < resumed["chunksWritten"]
    assert verify(run_tessera, out)[0] == 0
    assert_same_output(single, out)


def test_verify_names_a_corrupt_chunk_and_resume_repairs_it(tmp_path, run_tessera, case):
    tiles, single = case
    out = tmp_path / "damaged.zarr"
    shutil.copytree(single, out)
    victim = sorted((out / "0" / "c").rglob("*"))[-1]
    assert victim.is_file()
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    code, report = verify(run_tessera, out)
    assert code == 65 and report["corrupt"] == [str(victim.relative_to(out))]
    text = run_tessera("verify", out, check=False)
    assert "corrupt" in text.stdout and str(victim.relative_to(out)) in text.stdout
    run_tessera("fuse", *fuse_args(tiles), "-o", out, "--resume")
    assert verify(run_tessera, out)[0] == 0
    assert_same_output(single, out)
    # A damaged pyramid block too, in an output that parts wrote: the resumed part rebuilds it.
    parts = tmp_path / "parts.zarr"
    for i in (0, 1):
        run_tessera("fuse", *fuse_args(tiles), "-o", parts, "--part", f"{i}/2")
    victims = [sorted((parts / level / "c").rglob("*"))[-1] for level in ("0", "1")]
    for victim in victims:
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
    code, report = verify(run_tessera, parts)
    assert code == 65 and report["corrupt"] == sorted(str(v.relative_to(parts)) for v in victims)
    for i in (0, 1):  # each part rewrites what is damaged in its share; the last also the pyramid's
        run_tessera("fuse", *fuse_args(tiles), "-o", parts, "--part", f"{i}/2", "--resume")
    assert verify(run_tessera, parts)[0] == 0
    assert_same_output(single, parts)


def test_duplicate_and_overlapping_parts_never_leave_a_wrong_chunk(tmp_path, run_tessera, tessera_bin, case):
    tiles, single = case
    out = tmp_path / "overlap.zarr"
    args = fuse_args(tiles, "--threads", 1)
    # The same part twice at once: the second is refused (status 75) while the first runs.
    first = subprocess.Popen([str(tessera_bin), "fuse", *args, "-o", str(out), "--part", "0/2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / ".overlap.zarr.part-0-of-2.tessera-lock"
    deadline = time.time() + 60
    while time.time() < deadline and not lock.exists():
        time.sleep(0.005)
    second = run_tessera("fuse", *args, "-o", out, "--part", "0/2", check=False)
    assert second.returncode == 75 and "fuse part 0/2" in second.stderr, second.stderr
    # Overlapping parts of two splits write the same chunks at the same time: identical bytes.
    overlapping = [subprocess.Popen([str(tessera_bin), "fuse", *args, "-o", str(out), "--part", p],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for p in ("0/3", "1/3")]
    for p in [first, *overlapping]:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    run_tessera("fuse", *args, "-o", out, "--part", "1/2")
    assert verify(run_tessera, out)[0] == 0
    assert_same_output(single, out)


def test_threads_bound_each_process(tmp_path, run_tessera, tessera_bin, case):
    tiles, _ = case
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    run = subprocess.run([str(tessera_bin), "fuse", *fuse_args(tiles, "--threads", 1, "--pyramid", 1),
                          "-o", str(tmp_path / "one-thread.zarr")], capture_output=True, text=True)
    wall = time.time() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert run.returncode == 0, run.stderr
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # One thread of work (the HDF5 decoders included): CPU time within wall time, with slack for
    # start-up and the progress timer.
    assert cpu <= 1.25 * wall + 0.1, (cpu, wall)


def test_parts_come_from_the_launchers_environment(tmp_path, run_tessera, tessera_bin, case):
    tiles, single = case
    out = tmp_path / "array.zarr"
    for task in (1, 2, 3):  # a SLURM array numbered from 1
        env = {**os.environ, "SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_MIN": "1",
               "SLURM_ARRAY_TASK_COUNT": "3"}
        run = subprocess.run([str(tessera_bin), "fuse", *fuse_args(tiles), "-o", str(out), "--json"],
                             capture_output=True, text=True, env=env)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["part"] == f"{task - 1}/3"
    assert verify(run_tessera, out)[0] == 0
    assert_same_output(single, out)
    env = {**os.environ, "JOB_COMPLETION_INDEX": "0"}
    refused = subprocess.run([str(tessera_bin), "fuse", *fuse_args(tiles), "-o", str(tmp_path / "k.zarr")],
                             capture_output=True, text=True, env=env)
    assert refused.returncode == 64 and "--part-count" in refused.stderr


def test_resume_is_not_fooled_by_how_paths_are_spelled(tmp_path, run_tessera, case):
    tiles, single = case
    out = tmp_path / "spelled.zarr"
    relative = [os.path.relpath(t) for t in tiles]
    run_tessera("fuse", *fuse_args(relative), "-o", out, "--part", "0/2")
    # The other part, and a resume, with absolute paths through a symbolic link: the same plan.
    link = tmp_path / "link"
    link.symlink_to(tiles[0].parent)
    run_tessera("fuse", *fuse_args([link / t.name for t in tiles]), "-o", out, "--part", "1/2", "--resume")
    assert verify(run_tessera, out)[0] == 0
    # The same chunks; the provenance names the views as the first process spelled them.
    assert chunk_files(single) == chunk_files(out)
    views = group_attributes(out)["tessera"]["views"]
    assert views[0]["name"].startswith(relative[0])


def test_an_overwrite_waits_for_running_parts_and_commands_name_missing_outputs(tmp_path, run_tessera, tessera_bin,
                                                                                 case):
    tiles, _ = case
    out = tmp_path / "busy.zarr"
    args = fuse_args(tiles, "--threads", 1)
    part = subprocess.Popen([str(tessera_bin), "fuse", *args, "-o", str(out), "--part", "0/2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / ".busy.zarr.part-0-of-2.tessera-lock"
    deadline = time.time() + 60
    while time.time() < deadline and not lock.exists():
        time.sleep(0.005)
    replaced = run_tessera("fuse", *args, "-o", out, "--overwrite", check=False)
    assert part.poll() is None, "the part finished before the overwrite tried (machine too fast?)"
    assert replaced.returncode == 75 and "fuse part 0/2" in replaced.stderr, replaced.stderr
    _, err = part.communicate(timeout=600)
    assert part.returncode == 0, err
    for command in ("finalize", "verify"):
        missing = run_tessera(command, tmp_path / "nope" / "x.zarr", check=False)
        assert missing.returncode == 64 and "no such output" in missing.stderr, missing.stderr
    assert not (tmp_path / "nope").exists()
