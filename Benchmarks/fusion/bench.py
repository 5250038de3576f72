"""Fusion benchmark: tessera fuse against the DaskFusion approach and the copy limit, on the inputs
users have. Run through Benchmarks/fusion/run.sh (which sets the defaults below).

Cases (every input written by `tessera simulate`, the same files for every tool):
  3x3-gzip       3x3 tiles of 64x256x256 uint16, 2 channels, 15 % overlap, subpixel positions,
                 gzip level 1, HDF5 chunks 16x128x128 (the default input)
  6x6-2d-gzip    6x6 tiles of 512x512, 2 channels, gzip 1, chunks 128x512
  3x3-bdv-4x32   the 3x3 case as a BigDataViewer project with 4x32x32 (z,y,x) blocks, gzip 1
  3x3-contig     the 3x3 case, uncompressed contiguous HDF5 (a labelled extra row: few users have it)
  BIG=1 adds:
  4x4-gzip       4x4 tiles of 128x512x512, 2 channels (2 GiB raw), gzip 1, chunks 16x128x128; also
                 with --memory 512M and 256M (bytes read, speed, peak RSS)
  30x30-2d-gzip  900 tiles of 512x512, 1 channel (13127^2 px), gzip 1, chunks 128x512

Every tool reads its input inside its timed region. Tessera is timed as a whole process (start-up,
planning, fusion, the default pyramid, metadata), and its own summary gives the fusion step; the
DaskFusion approach (dask map_blocks + scipy.ndimage.affine_transform, order 1, max blending, no
pyramid) is timed in-process from before it reads the tiles, and as a whole process. The copy limit
(`tessera bench copy`: the same reads and codec, no resampling) runs in interleaved pairs with
`tessera fuse --pyramid 1`, and the median of the per-pair ratios is reported; so does the BDV
small-block case with the 3x3 gzip one (PAIRS pairs, default 8). Times: min and
median of REPEAT runs (the machine is shared and noisy).
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

BIN = os.environ.get("TESSERA_BIN", ".build/release/tessera")
PY = os.environ.get("PYTHON", ".venv/bin/python")
SCRATCH = os.environ.get("SCRATCH", "/tmp/tessera-bench")
THREADS = int(os.environ.get("THREADS", "2"))
REPEAT = int(os.environ.get("REPEAT", "5"))
DASK_REPEAT = int(os.environ.get("DASK_REPEAT", "3"))
PAIRS = int(os.environ.get("PAIRS", "8"))
BIG = os.environ.get("BIG", "0") == "1"
ONLY = os.environ.get("CASES", "").split(",") if os.environ.get("CASES") else None


def run(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (stdout, wall seconds, peak RSS bytes)."""
    stats = os.path.join(SCRATCH, "time.txt")
    full = ["/usr/bin/time", "-f", "%e %M", "-o", stats] + [str(c) for c in cmd]
    start = time.perf_counter()
    p = subprocess.run(full, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stdout}\n{p.stderr}")
    rss_kib = int(open(stats).read().split()[-1])
    return p.stdout, wall, rss_kib * 1024


def simulate(name, *args):
    """Writes a dataset once (kept between runs); returns the paths to pass to the tools."""
    out = os.path.join(SCRATCH, name)
    done = os.path.join(out, ".done")
    if not os.path.exists(done):
        shutil.rmtree(out, ignore_errors=True)
        run([BIN, "simulate", out, *args])
        open(done, "w").close()
    if "--format" in args:
        return [os.path.join(out, "dataset.xml")]
    return sorted(os.path.join(out, f) for f in os.listdir(out) if f.startswith("tile_") and f.endswith(".h5"))


def fuse(inputs, extra=()):
    out = os.path.join(SCRATCH, "tessera.zarr")
    shutil.rmtree(out, ignore_errors=True)  # not --overwrite: deleting the last output is not fusion work
    text, wall, rss = run([BIN, "fuse", *inputs, "-o", out, "--threads", THREADS, "--quiet", *extra])
    m = re.search(
        r"fused (\d+) voxels in ([0-9.]+) s \(([0-9.]+) Mvoxel/s\).*whole job ([0-9.]+) s.*read ([0-9.]+ \w+)", text)
    if not m:
        sys.exit(f"cannot parse: {text}")
    return {"voxels": int(m[1]), "fusion_s": float(m[2]), "mvoxel_s": float(m[3]), "job_s": float(m[4]),
            "read": m[5], "wall_s": wall, "rss": rss, "line": text.strip()}


def copy_limit(inputs):
    """Returns (written Mvoxel/s, whole-process wall seconds) of `tessera bench copy`."""
    text, wall, _ = run([BIN, "bench", "copy", *inputs, "--threads", THREADS, "--scratch", SCRATCH])
    return float(re.search(r": ([0-9.]+) Mvoxel/s", text)[1]), wall


def dask(inputs):
    out = os.path.join(SCRATCH, "daskfusion.zarr")
    shutil.rmtree(out, ignore_errors=True)
    text, wall, rss = run([PY, "Benchmarks/fusion/daskfusion.py", *inputs, "--out", out, "--threads", THREADS])
    r = json.loads(text.strip().splitlines()[-1])
    r.update(wall_s=wall, rss=rss)
    return r


def mm(values, fmt="{:.2f}"):
    return f"{fmt.format(min(values))} / {fmt.format(statistics.median(values))}"


def mib(b):
    return f"{b / 2**20:.0f} MiB"


def case(name, inputs, with_dask=True, with_copy=False, extra=()):
    if ONLY and name not in ONLY:
        return None
    print(f"== {name}: {len(inputs)} input file(s)", file=sys.stderr)
    runs = [fuse(inputs, extra) for _ in range(REPEAT)]
    print(runs[0]["line"], file=sys.stderr)
    row = {"case": name, "voxels": runs[0]["voxels"],
           "tessera_wall": [r["wall_s"] for r in runs], "tessera_job": [r["job_s"] for r in runs],
           "tessera_fusion": [r["fusion_s"] for r in runs], "tessera_mvox": [r["mvoxel_s"] for r in runs],
           "tessera_rss": max(r["rss"] for r in runs), "read": runs[0]["read"]}
    if with_dask:
        d = [dask(inputs) for _ in range(DASK_REPEAT)]
        row.update(dask_s=[x["seconds"] for x in d], dask_wall=[x["wall_s"] for x in d],
                   dask_read=[x["read_seconds"] for x in d], dask_rss=max(x["rss"] for x in d))
    if with_copy:
        pairs, copy_walls = [], []
        for _ in range(REPEAT):
            f = fuse(inputs, ("--pyramid", "1"))
            speed, wall = copy_limit(inputs)
            pairs.append((f["mvoxel_s"], speed))
            copy_walls.append(wall)
        row.update(copy_pairs=pairs, copy_wall=copy_walls)
    return row


def main():
    os.makedirs(SCRATCH, exist_ok=True)
    common = ["--overlap", "0.15", "--jitter", "2", "--seed", "1", "--deflate", "1"]
    rows = []
    t3 = simulate("3x3-gzip", "--tile-shape", "64,256,256", "--grid", "1,3,3", "--channels", "2",
                  "--chunks", "16,128,128", *common)
    rows.append(case("3x3-gzip", t3, with_copy=True))
    t2 = simulate("6x6-2d-gzip", "--tile-shape", "512,512", "--grid", "6,6", "--channels", "2",
                  "--chunks", "128,512", *common)
    rows.append(case("6x6-2d-gzip", t2))
    bdv = simulate("3x3-bdv-4x32", "--format", "bdv", "--tile-shape", "64,256,256", "--grid", "1,3,3",
                   "--channels", "2", "--chunks", "4,32,32", *common)
    rows.append(case("3x3-bdv-4x32", bdv, with_dask=False))
    contig = simulate("3x3-contig", "--tile-shape", "64,256,256", "--grid", "1,3,3", "--channels", "2",
                      "--overlap", "0.15", "--jitter", "2", "--seed", "1", "--deflate", "0")
    rows.append(case("3x3-contig", contig))
    if BIG:
        t4 = simulate("4x4-gzip", "--tile-shape", "128,512,512", "--grid", "1,4,4", "--channels", "2",
                      "--chunks", "16,128,128", *common)
        rows.append(case("4x4-gzip", t4))
        for budget in ["512M", "256M"]:
            r = case(f"4x4-gzip --memory {budget}", t4, with_dask=False, extra=("--memory", budget))
            rows.append(r)
        t900 = simulate("30x30-2d-gzip", "--tile-shape", "512,512", "--grid", "30,30", "--channels", "1",
                        "--chunks", "128,512", *common)
        rows.append(case("30x30-2d-gzip", t900))
    rows = [r for r in rows if r]

    print(f"\n{THREADS} threads, min / median of {REPEAT} runs (DaskFusion: {DASK_REPEAT}); seconds\n")
    print("| case | Mvoxel out | Tessera whole process | Tessera whole job (summary) | fusion step | "
          "DaskFusion in-process | DaskFusion whole process | ratio (DaskFusion in-process / Tessera whole process, "
          "min of each) | Tessera peak RSS | Tessera read |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{min(r['dask_s']) / min(r['tessera_wall']):.1f}×" if "dask_s" in r else "–"
        print(f"| {r['case']} | {r['voxels'] / 1e6:.0f} | {mm(r['tessera_wall'])} | {mm(r['tessera_job'])} | "
              f"{mm(r['tessera_fusion'])} | {mm(r['dask_s']) if 'dask_s' in r else '–'} | "
              f"{mm(r['dask_wall']) if 'dask_wall' in r else '–'} | {ratio} | {mib(r['tessera_rss'])} | {r['read']} |")
    for r in rows:
        if "copy_pairs" in r:
            shares = [f / c for f, c in r["copy_pairs"]]
            print(f"\n{r['case']}: fusion step (--pyramid 1) {statistics.median(f for f, _ in r['copy_pairs']):.1f} "
                  f"Mvoxel/s, copy limit {statistics.median(c for _, c in r['copy_pairs']):.1f} Mvoxel/s; "
                  f"share median {statistics.median(shares):.2f} (min {min(shares):.2f}, max {max(shares):.2f}, "
                  f"{len(shares)} pairs)")
            # The copy as a whole process (start-up, reading and decoding every view, encoding and
            # writing it, no resampling, no pyramid): how far from DaskFusion a job could get with
            # these codecs at all.
            if "dask_s" in r:
                print(f"{r['case']}: the copy limit as a whole process {mm(r['copy_wall'])} s; DaskFusion "
                      f"in-process / copy {min(r['dask_s']) / min(r['copy_wall']):.1f}× (minima)")
    bdv_row = next((r for r in rows if r["case"] == "3x3-bdv-4x32"), None)
    gz_row = next((r for r in rows if r["case"] == "3x3-gzip"), None)
    if bdv_row and gz_row:
        print(f"\nBDV 4x32x32 blocks vs 16x128x128 chunks, fusion Mvoxel/s (median): "
              f"{statistics.median(bdv_row['tessera_mvox']) / statistics.median(gz_row['tessera_mvox']):.2f}")
        # The machine drifts between the two cases' runs: PAIRS interleaved runs, one of each,
        # and the median of their ratios.
        ratios = [fuse(bdv)["mvoxel_s"] / fuse(t3)["mvoxel_s"] for _ in range(PAIRS)]
        print(f"BDV vs 16x128x128 in {PAIRS} interleaved pairs: median {statistics.median(ratios):.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})")
    print("\n" + json.dumps(rows))


if __name__ == "__main__":
    main()
