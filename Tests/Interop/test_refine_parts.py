"""tessera refine-positions split into parts: `--part i/N --pairs-out DIR` (or an MPI launcher) measures
shares of the pairs, `--solve DIR` writes exactly what a single process writes (refined XML or manifest and
the report, byte for byte); a missing part is named; a part without --pairs-out is refused."""
import json
import os
import shutil
import subprocess

import pytest


@pytest.fixture(scope="module")
def project(tmp_path_factory, tessera_bin):
    """A small 3-D BigStitcher project (2 channels, 1x2x3 tiles), refined by one process."""
    root = tmp_path_factory.mktemp("parts")

    def run(*args):
        r = subprocess.run([str(tessera_bin), *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r

    run("simulate", root / "p", "--format", "bdv", "--levels", 2, "--tile-shape", "16,100,110", "--grid", "1,2,3",
        "--channels", 2, "--voxel-size", "2.0,0.5,0.5", "--overlap", 0.25, "--jitter", 4, "--seed", 31)
    xml = root / "p" / "dataset.xml"
    run("refine-positions", xml, "-o", root / "single.xml", "--report", root / "single.json", "--quiet")
    return xml, root


def assert_same_as_single(root, name):
    """root/NAME.xml and root/NAME.json are the single process's bytes (the XML names the HDF5 file relative
    to its own folder, so it is compared in the same one)."""
    assert (root / f"{name}.xml").read_bytes() == (root / "single.xml").read_bytes()
    assert (root / f"{name}.json").read_bytes() == (root / "single.json").read_bytes()


def test_parts_by_hand_then_solve_write_what_one_process_writes(project, tmp_path, run_tessera):
    xml, root = project
    pairs = tmp_path / "pairs"
    total = 0
    for i in range(3):
        r = run_tessera("refine-positions", xml, "--part", f"{i}/3", "--pairs-out", pairs, "--quiet", "--json")
        summary = json.loads(r.stdout)
        assert summary["part"] == i and summary["parts"] == 3 and summary["source"] == "--part"
        total += summary["pairs"]
    assert total == summary["totalPairs"] == len(json.loads((root / "single.json").read_text())["links"])
    assert sorted(p.name for p in pairs.iterdir()) == [f"pairs-0000{i}-of-00003.json" for i in range(3)]
    # Every pair once, each file with its part, one fingerprint.
    files = [json.loads(p.read_text()) for p in sorted(pairs.iterdir())]
    assert [f["part"] for f in files] == [0, 1, 2] and len({f["fingerprint"] for f in files}) == 1
    assert sorted(e["index"] for f in files for e in f["pairs"]) == list(range(total))
    # The dataset defaults to the one the parts measured; given again, it is the same.
    run_tessera("refine-positions", "--solve", pairs, "-o", root / "solved.xml", "--report",
                root / "solved.json", "--quiet")
    assert_same_as_single(root, "solved")
    run_tessera("refine-positions", xml, "--solve", pairs, "-o", root / "again.xml", "--report",
                root / "again.json")
    assert_same_as_single(root, "again")


def test_mpirun_parts_then_solve(project, tmp_path, tessera_bin, run_tessera):
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        pytest.skip("mpirun is not installed (Open MPI: apt-get install openmpi-bin)")
    xml, root = project
    pairs = tmp_path / "pairs"
    r = subprocess.run([mpirun, "-np", "3", "--oversubscribe", "--allow-run-as-root", str(tessera_bin),
                        "refine-positions", str(xml), "--pairs-out", str(pairs), "--quiet", "--threads", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("OMPI_COMM_WORLD_RANK of OMPI_COMM_WORLD_SIZE") == 3, r.stdout
    assert sorted(p.name for p in pairs.iterdir()) == [f"pairs-0000{i}-of-00003.json" for i in range(3)]
    run_tessera("refine-positions", "--solve", pairs, "-o", root / "mpi.xml", "--report",
                root / "mpi.json", "--quiet")
    assert_same_as_single(root, "mpi")


def test_a_missing_part_is_named_and_nothing_is_written(project, tmp_path, run_tessera):
    xml, _ = project
    pairs = tmp_path / "pairs"
    for i in (0, 2):
        run_tessera("refine-positions", xml, "--part", f"{i}/3", "--pairs-out", pairs, "--quiet")
    out = tmp_path / "solved.xml"
    r = run_tessera("refine-positions", "--solve", pairs, "-o", out, check=False)
    assert r.returncode == 65, r.stderr
    assert f"part 1 of 3 has no pair file; run it with --part 1/3 --pairs-out {pairs}" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()
    # Given other measurement options than the parts': a usage error naming the option.
    r = run_tessera("refine-positions", "--solve", pairs, "-o", out, "--max-shift", 3, check=False)
    assert r.returncode == 64 and "--max-shift 10,10,10 (this run: 3,3,3)" in r.stderr, r.stderr


def test_parts_need_pairs_out_and_a_launcher_alone_is_ignored(project, tmp_path, tessera_bin, run_tessera):
    xml, root = project
    r = run_tessera("refine-positions", xml, "--part", "1/3", "-o", tmp_path / "x.xml", check=False)
    assert r.returncode == 64 and "--pairs-out" in r.stderr, r.stderr
    r = run_tessera("refine-positions", xml, "--pairs-out", tmp_path / "pairs", "-o", tmp_path / "x.xml", check=False)
    assert r.returncode == 64 and "--solve" in r.stderr, r.stderr
    r = run_tessera("refine-positions", "--solve", tmp_path / "pairs", "--part", "0/2", "-o", tmp_path / "x.xml",
                    check=False)
    assert r.returncode == 64, r.stderr
    # An MPI rank's environment without --pairs-out: one process does the whole job.
    env = dict(os.environ, OMPI_COMM_WORLD_RANK="1", OMPI_COMM_WORLD_SIZE="3")
    r = subprocess.run([str(tessera_bin), "refine-positions", str(xml), "-o", str(root / "whole.xml"), "--report",
                        str(root / "whole.json"), "--quiet"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert_same_as_single(root, "whole")
    # A launcher that gives only the index (a Kubernetes Indexed Job) with --part-count.
    env = dict(os.environ, JOB_COMPLETION_INDEX="1")
    r = subprocess.run([str(tessera_bin), "refine-positions", str(xml), "--pairs-out", str(tmp_path / "k8s"),
                        "--part-count", "3", "--quiet"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "JOB_COMPLETION_INDEX of --part-count" in r.stdout, r.stderr
    assert [p.name for p in (tmp_path / "k8s").iterdir()] == ["pairs-00001-of-00003.json"]
    r = run_tessera("refine-positions", xml, "--part-count", "3", "-o", tmp_path / "x.xml", check=False)
    assert r.returncode == 64 and "--part-count needs --pairs-out" in r.stderr, r.stderr


def test_hdf5_tiles_solve_to_the_same_manifest(tmp_path, run_tessera):
    run_tessera("simulate", tmp_path / "t", "--tile-shape", "90,100", "--grid", "2,3", "--channels", 1,
                "--jitter", 3, "--seed", 33)
    tiles = sorted((tmp_path / "t").glob("tile_*.h5"))
    run_tessera("refine-positions", *tiles, "-o", tmp_path / "single.json", "--max-shift", 6, "--quiet")
    for i in range(2):
        run_tessera("refine-positions", *tiles, "--part", f"{i}/2", "--pairs-out", tmp_path / "pairs",
                    "--max-shift", 6, "--quiet")
    run_tessera("refine-positions", "--solve", tmp_path / "pairs", "-o", tmp_path / "solved.json", "--quiet")
    assert (tmp_path / "solved.json").read_bytes() == (tmp_path / "single.json").read_bytes()
