"""tessera slurm: the batch script it writes is valid bash, names every step, and, run under a stub
sbatch that executes the jobs at once (array tasks in sequence, then the jobs that depend on them),
runs fuse parts, then finalize and verify, stops at a failed part and resumes when run again.

With TESSERA_REAL_SLURM=1 (and root, slurm-wlm and munge installed), the same script also runs on a
one-node SLURM cluster that Tests/Interop/slurm_single_node.sh starts and stops."""
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[1] / "Datasets" / "sample" / "dataset.xml"

# A stand-in for sbatch: what the generated script uses, run at once. Array tasks run in sequence
# with SLURM's variables; a job whose afterok dependency failed is refused. Jobs are recorded in
# $SBATCH_STUB_STATE (JSON) for the tests to read.
STUB_SBATCH = r'''
import json, os, re, subprocess, sys, tempfile
from pathlib import Path

state_path = Path(os.environ["SBATCH_STUB_STATE"])
state = json.loads(state_path.read_text()) if state_path.exists() else {"next": 1000, "jobs": {}}
VALUED = {"--array", "--dependency", "--job-name", "--output", "--chdir", "--cpus-per-task", "--wrap",
          "--partition", "--time", "--mem", "--account", "--kill-on-invalid-dep", "--open-mode"}
args, opts, i = sys.argv[1:], {}, 0
while i < len(args) and args[i].startswith("-"):
    name, eq, value = args[i].partition("=")
    if name == "--parsable" and not eq:
        opts[name] = True
    elif name in VALUED:
        if not eq:
            i += 1
            value = args[i]
        opts[name] = value
    else:
        sys.exit(f"sbatch: unrecognized option '{args[i]}'")
    i += 1
if "--wrap" in opts:
    script = "#!/bin/sh\n" + opts["--wrap"] + "\n"
elif i < len(args):
    script = Path(args[i]).read_text()
else:
    script = sys.stdin.read()
if not script.startswith("#!"):
    sys.exit("sbatch: error: This does not look like a batch script.")
if not re.fullmatch(r"\d+[KMGT]?", opts.get("--mem", "1")):
    sys.exit(f"sbatch: error: invalid --mem specification: {opts['--mem']}")
if not re.fullmatch(r"(\d+-)?\d+(:\d+){0,2}", opts.get("--time", "1")):
    sys.exit(f"sbatch: error: Invalid --time specification: {opts['--time']}")
for dep in filter(None, opts.get("--dependency", "").split(",")):
    kind, *ids = dep.split(":")
    if kind != "afterok" or not ids:
        sys.exit(f"sbatch: stub knows afterok:ID[:ID] only, got {dep}")
    for dep_id in ids:
        if dep_id not in state["jobs"] or not state["jobs"][dep_id]["ok"]:
            sys.exit("sbatch: error: Batch job submission failed: Job dependency problem")
match = re.fullmatch(r"(\d+)-(\d+)(%\d+)?", opts.get("--array", "0-0"))
if not match:
    sys.exit(f"sbatch: error: invalid --array specification: {opts['--array']}")
first, last = int(match[1]), int(match[2])
job_id, name = state["next"], opts.get("--job-name", "sbatch")
state["next"] += last - first + 1
with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
    f.write(script)
os.chmod(f.name, 0o755)
tasks = {}
for k, task in enumerate(range(first, last + 1)):
    env = dict(os.environ, SLURM_JOB_ID=str(job_id + k), SLURM_JOB_NAME=name, SLURM_SUBMIT_DIR=os.getcwd())
    if "--cpus-per-task" in opts:
        env["SLURM_CPUS_PER_TASK"] = opts["--cpus-per-task"]
    pattern = opts.get("--output", "slurm-%A_%a.out" if "--array" in opts else "slurm-%j.out")
    if "--array" in opts:
        env.update(SLURM_ARRAY_JOB_ID=str(job_id), SLURM_ARRAY_TASK_ID=str(task), SLURM_ARRAY_TASK_MIN=str(first),
                   SLURM_ARRAY_TASK_MAX=str(last), SLURM_ARRAY_TASK_COUNT=str(last - first + 1),
                   SLURM_ARRAY_TASK_STEP="1")
    log = (pattern.replace("%%", "\0").replace("%A", str(job_id)).replace("%a", str(task))
           .replace("%j", str(job_id + k)).replace("%x", name).replace("\0", "%"))
    log = Path(opts.get("--chdir", "."), log)
    with open(log, "a" if opts.get("--open-mode") == "append" else "w") as out:
        rc = subprocess.run([f.name], cwd=opts.get("--chdir"), env=env, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL).returncode
    tasks[str(task)] = rc
os.unlink(f.name)
state["jobs"][str(job_id)] = {"name": name, "ok": all(rc == 0 for rc in tasks.values()), "tasks": tasks,
                              "options": opts, "script": script}
state_path.write_text(json.dumps(state))
print(job_id if "--parsable" in opts else f"Submitted batch job {job_id}")
'''

# A stand-in for squeue: prints $SQUEUE_STUB_OUTPUT (the jobs still queued), by default nothing.
STUB_SQUEUE = "#!/bin/sh\nprintf '%s' \"${SQUEUE_STUB_OUTPUT:-}\"\n"

# A stand-in for tessera in the jobs: records each call (arguments and SLURM variables), fails as
# $FAKE_TESSERA_FAIL says ("fuse:1": the fuse of array task 1), and writes refine-positions' -o.
FAKE_TESSERA = r'''
import json, os, sys
from pathlib import Path
env = {k: v for k, v in os.environ.items() if k.startswith("SLURM_")}
with open(os.environ["FAKE_TESSERA_LOG"], "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "env": env, "cwd": os.getcwd()}) + "\n")
if sys.argv[1:2] == ["refine-positions"] and "--solve" in sys.argv:
    Path(sys.argv[sys.argv.index("-o") + 1]).write_text("<refined/>")
command, _, task = os.environ.get("FAKE_TESSERA_FAIL", "").partition(":")
if sys.argv[1:2] == [command] and os.environ.get("SLURM_ARRAY_TASK_ID") == task:
    sys.exit(74)
'''


def executable(path, text, interpreter=None):
    path.write_text((f"#!{interpreter}\n" if interpreter else "") + text)
    path.chmod(0o755)
    return path


@pytest.fixture
def stub(tmp_path, monkeypatch):
    """PATH with the stub sbatch and squeue first; returns the stub's state reader."""
    bin_dir = tmp_path / "stub-bin"
    bin_dir.mkdir()
    executable(bin_dir / "sbatch", STUB_SBATCH, sys.executable)
    executable(bin_dir / "squeue", STUB_SQUEUE)
    state = tmp_path / "sbatch-state.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SBATCH_STUB_STATE", str(state))
    for name in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(name)  # pytest itself may run inside a SLURM job
    return lambda: json.loads(state.read_text())["jobs"] if state.exists() else {}


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake tessera for the jobs; returns a reader of its calls."""
    log = tmp_path / "fake-tessera.jsonl"
    monkeypatch.setenv("FAKE_TESSERA_LOG", str(log))
    path = executable(tmp_path / "fake-tessera", FAKE_TESSERA, sys.executable)
    return path, lambda: [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def slurm(tessera_bin, *args, cwd):
    """Runs `tessera slurm ARGS` in `cwd`; returns the script's path."""
    r = subprocess.run([str(tessera_bin), "slurm", *map(str, args)], capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return Path(r.stdout.splitlines()[0].removeprefix("wrote ").split(": ")[0])


def bash(script, **env):
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, env={**os.environ, **env})


def test_script_is_valid_bash_and_names_every_step(tmp_path, run_tessera, tessera_bin):
    out = tmp_path / "data dir" / "fused.ome.zarr"
    r = run_tessera("slurm", SAMPLE, "-o", out, "--array", 4, "--partition", "cpu", "--account", "lab42",
                    "--time", "1-02:00:00", "--mem", "12G", "--cpus-per-task", 6, "--", "--blend", "max")
    script = out.parent / "tessera-fused.sh"
    assert r.stdout.splitlines()[0].startswith(f"wrote {script}: ")
    assert r.stdout.splitlines()[1] == f"submit with: bash {shlex.quote(str(script))}"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    binary, q_out = shlex.quote(os.path.realpath(tessera_bin)), shlex.quote(str(out))  # quoted as the script does
    for needle in ["set -euo pipefail", "--job-name=tessera-fuse", "--job-name=tessera-finalize", "--array=0-3",
                   '--dependency=afterok:"$fuse"', "--kill-on-invalid-dep=yes", "--partition=cpu", "--account=lab42",
                   "--time=1-02:00:00", "--mem=12288M", "--cpus-per-task=6", f"--output=\"$logs/fuse-%A_%a.log\"",
                   f"logs={shlex.quote(str(out.parent / 'tessera-fused-logs'))}", "# Step 1, tessera-fuse", "# Step 2, tessera-finalize",
                   f"exec {binary} fuse {shlex.quote(str(SAMPLE))} -o {q_out} --blend max --part-count 4 --resume --no-finalize "
                   '--threads "${SLURM_CPUS_PER_TASK:-6}" --memory 9216M',
                   f"{binary} finalize {q_out} --threads", f"exec {binary} verify {q_out}"]:
        assert needle in text, needle
    assert "refine-positions" not in text


def test_options_are_checked_with_one_line_errors(tmp_path, tessera_bin):
    out = tmp_path / "f.zarr"
    cases = [(["--array", 0], "--array"), (["--time", "25:61:00"], "--time"), (["--time", "1h"], "--time"),
             (["--mem", "lots"], "--mem"), (["--mem", "100M"], "--mem"), (["--cpus-per-task", 0], "--cpus-per-task"),
             (["--partition", "a b"], "--partition"), (["--", "--threads", 4], "--threads"),
             (["--", "--part-count=2"], "--part-count"), (["--", "-o", "x.zarr"], "-o"),
             (["--tessera", tmp_path], "--tessera")]
    for extra, option in cases:
        r = subprocess.run([str(tessera_bin), "slurm", str(SAMPLE), "-o", str(out), *map(str, extra)],
                           capture_output=True, text=True)
        assert r.returncode == 64, (extra, r.returncode, r.stderr)
        assert r.stderr.startswith("Error: ") and r.stderr.count("\n") == 1 and option in r.stderr, (extra, r.stderr)
    r = subprocess.run([str(tessera_bin), "slurm", str(tmp_path / "missing.xml"), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 65 and "missing.xml" in r.stderr
    assert not list(tmp_path.glob("*.sh"))


def test_jobs_run_in_order_under_a_stub_sbatch(tmp_path, tessera_bin, stub, fake):
    fake_bin, calls = fake
    odd = "it's \"odd\" $HOME.json"  # reaches every fuse task verbatim, relative to where slurm ran
    script = slurm(tessera_bin, SAMPLE, "-o", "out/fused.ome.zarr", "--array", 3, "--mem", "1G", "--cpus-per-task", 2,
                   "--tessera", fake_bin, "--script", "jobs/run it.sh", "--", "--blend", "max", "--stage-times", odd,
                   cwd=tmp_path)
    assert script == tmp_path / "jobs" / "run it.sh"
    r = bash(script)
    assert r.returncode == 0, r.stderr
    out = str(tmp_path / "out" / "fused.ome.zarr")
    got = calls()
    assert [c["argv"][0] for c in got] == ["fuse"] * 3 + ["finalize", "verify"]
    for task, call in enumerate(got[:3]):
        assert call["argv"] == ["fuse", str(SAMPLE), "-o", out, "--blend", "max", "--stage-times", odd,
                                "--part-count", "3", "--resume", "--no-finalize", "--threads", "2", "--memory", "768M"]
        env = call["env"]
        assert (env["SLURM_ARRAY_TASK_ID"], env["SLURM_ARRAY_TASK_MIN"], env["SLURM_ARRAY_TASK_COUNT"]) == (
            str(task), "0", "3")
        assert call["cwd"] == str(tmp_path)
    assert got[3]["argv"] == ["finalize", out, "--threads", "2"] and got[4]["argv"] == ["verify", out]
    jobs = stub()
    fuse_id, finalize_id = jobs
    assert jobs[fuse_id]["name"] == "tessera-fuse" and jobs[finalize_id]["name"] == "tessera-finalize"
    assert jobs[finalize_id]["options"]["--dependency"] == f"afterok:{fuse_id}"
    assert f"tessera-fuse: array job {fuse_id}, 3 tasks" in r.stdout
    assert f"tessera-finalize: job {finalize_id}" in r.stdout and "run this script again" in r.stdout
    logs = tmp_path / "out" / "tessera-fused-logs"
    assert sorted(p.name for p in logs.glob("*.log")) == [
        f"finalize-{finalize_id}.log", *(f"fuse-{fuse_id}_{t}.log" for t in range(3))]
    assert (logs / "jobs").read_text().strip() == f"{fuse_id},{finalize_id}"


def test_a_failed_part_stops_finalize_and_a_rerun_resumes(tmp_path, tessera_bin, stub, fake):
    fake_bin, calls = fake
    script = slurm(tessera_bin, SAMPLE, "-o", tmp_path / "f.zarr", "--array", 3, "--tessera", fake_bin, cwd=tmp_path)
    r = bash(script, FAKE_TESSERA_FAIL="fuse:1")
    assert r.returncode != 0 and "dependency" in r.stderr.lower(), r.stderr
    assert [c["argv"][0] for c in calls()] == ["fuse"] * 3
    r = bash(script)  # finished parts are tessera fuse --resume's to skip; the script submits them all again
    assert r.returncode == 0, r.stderr
    assert [c["argv"][0] for c in calls()] == ["fuse"] * 6 + ["finalize", "verify"]


def test_a_rerun_is_refused_while_the_last_submission_is_queued(tmp_path, tessera_bin, stub, fake):
    fake_bin, calls = fake
    script = slurm(tessera_bin, SAMPLE, "-o", tmp_path / "f.zarr", "--array", 2, "--tessera", fake_bin, cwd=tmp_path)
    assert bash(script).returncode == 0
    submitted = len(stub())
    r = bash(script, SQUEUE_STUB_OUTPUT="1002_1\n")
    assert r.returncode == 1 and "still queued or running" in r.stderr and "scancel" in r.stderr, r.stderr
    assert len(stub()) == submitted


def test_refine_runs_pairs_and_solve_first_and_once(tmp_path, tessera_bin, stub, fake):
    fake_bin, calls = fake
    script = slurm(tessera_bin, SAMPLE, "-o", tmp_path / "f.ome.zarr", "--array", 2, "--mem", "2G", "--refine",
                   "--tessera", fake_bin, cwd=tmp_path)
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    for needle in ["--job-name=tessera-pairs", "--job-name=tessera-solve", "# Step 1, tessera-pairs",
                   "# Step 2, tessera-solve", "# Step 3, tessera-fuse", "# Step 4, tessera-finalize"]:
        assert needle in text, needle
    r = bash(script)
    assert r.returncode == 0, r.stderr
    pairs, refined = str(tmp_path / "tessera-f-pairs"), str(tmp_path / "tessera-f-refined.xml")
    got = [c["argv"] for c in calls()]
    assert got[:3] == [["refine-positions", str(SAMPLE), "--part-count", "2", "--pairs-out", pairs, "--threads", "8",
                        "--memory", "1024M"]] * 2 + [["refine-positions", "--solve", pairs, "-o", refined]]
    assert [a[:2] for a in got[3:]] == [["fuse", refined]] * 2 + [["finalize", str(tmp_path / "f.ome.zarr")],
                                                                    ["verify", str(tmp_path / "f.ome.zarr")]]
    jobs = stub()
    by_name = {j["name"]: (i, j) for i, j in jobs.items()}
    assert by_name["tessera-solve"][1]["options"]["--dependency"] == f"afterok:{by_name['tessera-pairs'][0]}"
    assert by_name["tessera-fuse"][1]["options"]["--dependency"] == f"afterok:{by_name['tessera-solve'][0]}"
    r = bash(script)  # the refined dataset exists: registration is skipped
    assert r.returncode == 0 and "tessera-pairs and tessera-solve skipped" in r.stdout, r.stderr
    assert [c["argv"][0] for c in calls()[len(got):]] == ["fuse", "fuse", "finalize", "verify"]
    assert "--dependency" not in list(stub().values())[-2]["options"]


def chunk_files(root):
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".tessera" not in p.parts and p.name != "zarr.json" and not p.name.startswith(".z")}


def fuse_through_the_script(tmp_path, run_tessera, tessera_bin, wait=None):
    """Fuses a small 3D dataset with the generated script (3 parts) and with one process; checks
    that verify passes and that both give the same arrays and chunk bytes."""
    run_tessera("simulate", tmp_path / "acq", "--tile-shape", "10,60,70", "--grid", "1,2,2", "--jitter", 1.5,
                "--seed", 3)
    tiles = sorted((tmp_path / "acq").glob("tile_*.h5"))
    options = ["--chunks", "4,16,16", "--pyramid", 2]
    single = tmp_path / "single.ome.zarr"
    run_tessera("fuse", *tiles, "-o", single, *options, "--quiet")
    out = tmp_path / "parts.ome.zarr"
    script = slurm(tessera_bin, *tiles, "-o", out, "--array", 3, "--mem", "1G", "--cpus-per-task", 1,
                   "--", *options, cwd=tmp_path)
    r = bash(script)
    assert r.returncode == 0, r.stdout + r.stderr
    if wait:
        wait(r.stdout)
    logs = "".join(p.read_text() for p in sorted((tmp_path / "tessera-parts-logs").glob("*.log")))
    assert run_tessera("verify", out, check=False).returncode == 0, logs
    for level in ("0", "1"):
        np.testing.assert_array_equal(zarr.open_array(out / level, mode="r")[...],
                                      zarr.open_array(single / level, mode="r")[...])
    assert chunk_files(out) == chunk_files(single)


def test_end_to_end_under_the_stub_equals_one_process(tmp_path, run_tessera, tessera_bin, stub):
    fuse_through_the_script(tmp_path, run_tessera, tessera_bin)


# A real one-node SLURM cluster (TESSERA_REAL_SLURM=1).

@pytest.fixture(scope="module")
def real_slurm(tmp_path_factory):
    if os.environ.get("TESSERA_REAL_SLURM") != "1":
        pytest.skip("set TESSERA_REAL_SLURM=1 to run on a one-node SLURM cluster (root, slurm-wlm, munge)")
    directory = tmp_path_factory.mktemp("slurm")
    setup = HERE / "slurm_single_node.sh"
    r = subprocess.run(["bash", str(setup), "start", str(directory)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    os.environ["SLURM_CONF"] = str(directory / "slurm.conf")
    try:
        yield directory
    finally:
        subprocess.run(["bash", str(setup), "stop", str(directory)])
        del os.environ["SLURM_CONF"]


def wait_for_jobs(stdout, timeout=300):
    """Waits until the jobs the script printed have left the queue; returns their final states."""
    ids = next(line for line in stdout.splitlines() if line.startswith("follow with:")).split("=")[1].split(",")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queued = subprocess.run(["squeue", "--noheader", "--format=%i", f"--jobs={','.join(ids)}"],
                                capture_output=True, text=True).stdout.strip()
        if not queued:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"jobs {ids} still queued after {timeout} s")
    states = {}
    for job in ids:
        text = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
        states[job] = sorted(set(w.split("=")[1] for w in text.split() if w.startswith("JobState=")))
    return states


def test_real_slurm_runs_the_jobs_in_order(tmp_path, tessera_bin, real_slurm, fake):
    fake_bin, calls = fake
    script = slurm(tessera_bin, SAMPLE, "-o", tmp_path / "f.zarr", "--array", 3, "--mem", "1G", "--cpus-per-task", 1,
                   "--time", "00:05:00", "--tessera", fake_bin, cwd=tmp_path)
    r = bash(script)
    assert r.returncode == 0, r.stderr
    states = wait_for_jobs(r.stdout)
    assert all(s == ["COMPLETED"] for s in states.values()), states
    got = calls()
    assert sorted(c["env"]["SLURM_ARRAY_TASK_ID"] for c in got[:3]) == ["0", "1", "2"]
    assert {c["env"]["SLURM_ARRAY_TASK_COUNT"] for c in got[:3]} == {"3"}
    assert [c["argv"][0] for c in got] == ["fuse"] * 3 + ["finalize", "verify"]


def test_real_slurm_cancels_finalize_after_a_failed_part(tmp_path, tessera_bin, real_slurm, fake):
    fake_bin, calls = fake
    script = slurm(tessera_bin, SAMPLE, "-o", tmp_path / "f.zarr", "--array", 2, "--mem", "1G", "--cpus-per-task", 1,
                   "--time", "00:05:00", "--tessera", fake_bin, cwd=tmp_path)
    r = bash(script, FAKE_TESSERA_FAIL="fuse:1")
    assert r.returncode == 0, r.stderr
    states = wait_for_jobs(r.stdout)
    assert [c["argv"][0] for c in calls()] == ["fuse"] * 2
    assert list(states.values()) == [["COMPLETED", "FAILED"], ["CANCELLED"]], states  # --kill-on-invalid-dep


def test_real_slurm_end_to_end_equals_one_process(tmp_path, run_tessera, tessera_bin, real_slurm):
    fuse_through_the_script(tmp_path, run_tessera, tessera_bin, wait=wait_for_jobs)
