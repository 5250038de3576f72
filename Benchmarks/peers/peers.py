"""Tessera against its peers, in one run on the same files: registration (tessera refine-positions,
multiview-stitcher's register, the scikit-image baseline) and fusion (tessera fuse, multiview-stitcher's
fuse, the DaskFusion approach). Run through Benchmarks/peers/run.sh, which documents the cases.

  peers.py bench                          the benchmark: every tool, REPEAT times, then the table and JSON
  peers.py mvs-register TILE.h5... -o OUT.json [--channel 0] [--threads 2]
  peers.py mvs-fuse TILE.h5... --out OUT.zarr [--threads 2]

The two mvs-* commands are multiview-stitcher runs as a user would write them. Each reads the HDF5 tiles
(h5py, datasets with `position_um`, `voxel_size_um`, `channel`, `tile` attributes as `tessera simulate`
writes them) inside its timed region, gives the stage positions as its initial transform (key "stage"),
and computes everything before the clock stops.

mvs-register: one channel (default 0, the channel Tessera and the baseline register), then
registration.register(msims, transform_key="stage", reg_channel_index=0, new_transform_key="registered",
n_parallel_pairwise_regs=threads) with its defaults otherwise: pairwise_reg_func=phase_correlation_registration
(scikit-image phase_cross_correlation, upsample_factor 2 for 3D, with and without phase normalisation,
then a choice among the shift's wrap-around candidates by structural similarity, and a Spearman link
quality), overlap_tolerance 0, pre_registration_pruning_method="alternating_pattern" (a checkerboard of
the tile graph: no diagonal pairs), groupwise_resolution_method="global_optimization" (translation), no
quality filter. Writes {"seconds", "read_seconds", "pairs", "tiles": [{"tile", "position_um",
"stage_position_um", "voxel_size_um"}]}: the registered and the stage transform of every tile, converted to
the world position (µm) of its voxel 0 in the same way (positions_um below), so evaluate.py can score both.

mvs-fuse: both channels, fusion.fuse(images=sims, transform_key="stage", interpolation_order=1) with its
defaults otherwise: fusion_func=weighted_average_fusion with its smooth blending weights (blending_widths
z 3, y 10, x 10 µm), output_stack_mode="union" at the first tile's voxel size, output chunks 256³ (its
default; 64×256×256 here), no pyramid (SpatialImages in, one SpatialImage out). The lazy result is computed
with the dask threaded scheduler (threads workers) straight into a Zarr v3 array with the codec Tessera and
the DaskFusion approach write (blosc lz4, byte shuffle) and the same chunks as the dask array. Prints one
JSON line: voxels, shape, seconds, read_seconds, mvoxel_per_s.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


# ---------------------------------------------------------------------------------------------------
# multiview-stitcher runs


def read_tiles(files, channels):
    """[(tile id, data (channels, z, y, x) or (z, y, x), voxel size µm, position µm)], channel ids.
    `channels` None: every channel of the tile, stacked; else the list of channel ids to keep."""
    import h5py
    import numpy as np

    out, ids = [], None
    for index, path in enumerate(files):
        with h5py.File(path, "r") as f:
            views = {}
            for name in f:
                d = f[name]
                if not isinstance(d, h5py.Dataset) or "position_um" not in d.attrs:
                    continue
                c = int(d.attrs.get("channel", [0])[0])
                if channels is None or c in channels:
                    views[c] = d
            cs = sorted(views)
            if ids is None:
                ids = cs
            first = views[cs[0]]
            tile = int(first.attrs.get("tile", [index])[0])
            vox = np.asarray(first.attrs["voxel_size_um"], float)
            pos = np.asarray(first.attrs["position_um"], float)
            data = np.stack([views[c][...] for c in cs])
        out.append((tile, data, vox, pos))
    return out, ids


def make_sim(data, vox, pos, channels):
    """A multiview-stitcher SpatialImage: dims c,z,y,x (or c,y,x), voxel size as its scale, the stage position
    as its translation (its intrinsic physical origin), identity affine under the key "stage"."""
    from multiview_stitcher import spatial_image_utils as si_utils

    sdims = ["z", "y", "x"][-len(vox):]
    return si_utils.get_sim_from_array(data, dims=["c"] + sdims, scale=dict(zip(sdims, map(float, vox))),
                                       translation=dict(zip(sdims, map(float, pos))), transform_key="stage",
                                       c_coords=list(channels))


def positions_um(msim, transform_key):
    """World position (µm) of a view's voxel 0 under one of its transforms. multiview-stitcher maps a voxel's
    intrinsic physical coordinates p = origin + index × spacing to the world as A @ [p, 1] (its fusion samples
    view v at inv(A_v) @ world), A stored as an xarray with dims (t,) x_in, x_out whose rows are the outputs
    and last column the offset (param_utils.affine_from_translation). So voxel 0 is at A @ [origin, 1]."""
    import numpy as np
    from multiview_stitcher import msi_utils
    from multiview_stitcher import spatial_image_utils as si_utils

    sim = msi_utils.get_sim_from_msim(msim)
    sdims = si_utils.get_spatial_dims_from_sim(sim)
    affine = si_utils.get_affine_from_sim(sim, transform_key)
    if "t" in affine.dims:
        affine = affine.isel(t=0)
    axes = list(sdims) + ["1"]
    m = np.asarray(affine.sel(x_in=axes, x_out=axes), float)
    origin = np.array([float(sim.coords[d].values[0]) for d in sdims])
    return (m @ np.r_[origin, 1.0])[:-1]


def mvs_register(args):
    import dask
    import numpy as np
    from multiview_stitcher import msi_utils, registration

    start = time.perf_counter()
    tiles, channels = read_tiles(args.tiles, [args.channel])
    msims = [msi_utils.get_msim_from_sim(make_sim(d, v, p, channels), scale_factors=[]) for _, d, v, p in tiles]
    read_seconds = time.perf_counter() - start
    with dask.config.set(scheduler="threads", num_workers=args.threads):
        result = registration.register(msims, transform_key="stage", reg_channel_index=0,
                                       new_transform_key="registered", n_parallel_pairwise_regs=args.threads,
                                       return_dict=True)
    seconds = time.perf_counter() - start
    graph = result["pairwise_registration"]["graph"]
    out = {"seconds": seconds, "read_seconds": read_seconds, "pairs": graph.number_of_edges(),
           "pair_list": sorted([sorted(map(int, e)) for e in graph.edges()]), "tiles": []}
    for (tile, _, vox, pos), msim in zip(tiles, msims):
        out["tiles"].append({"tile": tile, "position_um": positions_um(msim, "registered").tolist(),
                             "stage_position_um": positions_um(msim, "stage").tolist(),
                             "file_position_um": pos.tolist(), "voxel_size_um": vox.tolist()})
    with open(args.output, "w") as f:
        json.dump(out, f)


def mvs_fuse(args):
    import dask
    import dask.array as da
    import numpy as np
    import zarr
    from multiview_stitcher import fusion

    start = time.perf_counter()
    tiles, channels = read_tiles(args.tiles, None)
    sims = [make_sim(d, v, p, channels) for _, d, v, p in tiles]
    read_seconds = time.perf_counter() - start
    fused = fusion.fuse(images=sims, transform_key="stage", interpolation_order=1)
    data = fused.data  # dask array, dims (t, c, z, y, x)
    z = zarr.create_array(args.out, shape=data.shape, chunks=data.chunksize, dtype=data.dtype, overwrite=True,
                          compressors=zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"))
    with dask.config.set(scheduler="threads", num_workers=args.threads):
        da.store(data, z, lock=False)
    seconds = time.perf_counter() - start
    voxels = int(np.prod(data.shape))
    print(json.dumps({"voxels": voxels, "shape": list(map(int, data.shape)), "dims": list(fused.dims),
                      "chunks": list(map(int, data.chunksize)), "seconds": seconds, "read_seconds": read_seconds,
                      "mvoxel_per_s": voxels / seconds / 1e6}))


# ---------------------------------------------------------------------------------------------------
# The benchmark


BIN = os.environ.get("TESSERA_BIN", ".build/release/tessera")
PEERS_PY = os.environ.get("PEERS_PYTHON", ".venv-peers/bin/python")
PY = os.environ.get("PYTHON", PEERS_PY)  # the scikit-image baseline and the DaskFusion approach
SCRATCH = os.environ.get("SCRATCH", "/tmp/tessera-bench/peers")
THREADS = int(os.environ.get("THREADS", "2"))
REPEAT = int(os.environ.get("REPEAT", "3"))
SLOW_REPEAT = int(os.environ.get("SLOW_REPEAT", str(REPEAT)))  # multiview-stitcher, DaskFusion, scikit-image
CASE = "3x3-gzip"
SIMULATE = ["--tile-shape", "64,256,256", "--grid", "1,3,3", "--channels", "2", "--voxel-size", "2,0.5,0.5",
            "--overlap", "0.15", "--chunks", "16,128,128", "--deflate", "1", "--jitter", "4", "--seed", "1"]


def run(cmd, log):
    """Runs cmd under /usr/bin/time; returns (stdout, wall seconds, peak RSS bytes, CPU seconds (user + system)).
    stderr goes to `log`."""
    stats = os.path.join(SCRATCH, "time.txt")
    full = ["/usr/bin/time", "-f", "%e %M %U %S", "-o", stats] + [str(c) for c in cmd]
    with open(log, "w") as err:
        p = subprocess.run(full, stdout=subprocess.PIPE, stderr=err, text=True)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stdout}\n{open(log).read()[-3000:]}")
    wall, rss_kib, user, system = open(stats).read().split()[-4:]
    return p.stdout, float(wall), int(rss_kib) * 1024, float(user) + float(system)


def dataset():
    out = os.path.join(SCRATCH, CASE)
    if not os.path.exists(os.path.join(out, "truth.json")):
        shutil.rmtree(out, ignore_errors=True)
        print(f"writing {out}: tessera simulate {out} {' '.join(SIMULATE)}", file=sys.stderr)
        subprocess.run([BIN, "simulate", out, *SIMULATE], check=True, stdout=subprocess.DEVNULL)
    tiles = sorted(os.path.join(out, f) for f in os.listdir(out) if f.startswith("tile_") and f.endswith(".h5"))
    return tiles, os.path.join(out, "truth.json")


def input_voxels(tiles, channel):
    import h5py
    import numpy as np

    total = 0
    for path in tiles:
        with h5py.File(path, "r") as f:
            for name in f:
                d = f[name]
                if "position_um" in d.attrs and (channel is None or int(d.attrs["channel"][0]) == channel):
                    total += int(np.prod(d.shape))
    return total


def stated_manifest(tiles, path):
    """The positions the files state (HDF5 attributes), in the baseline's output format, for evaluate.py."""
    import h5py

    out = {"tiles": []}
    for index, f in enumerate(tiles):
        with h5py.File(f, "r") as h:
            d = next(h[n] for n in h if "position_um" in h[n].attrs)
            out["tiles"].append({"tile": int(d.attrs.get("tile", [index])[0]),
                                 "position_um": [float(x) for x in d.attrs["position_um"]],
                                 "voxel_size_um": [float(x) for x in d.attrs["voxel_size_um"]]})
    json.dump(out, open(path, "w"))


def warnings_of(log):
    """Distinct warning-looking lines a tool wrote to stderr."""
    seen = []
    for line in open(log):
        line = line.strip()
        if re.search(r"warn|error|deprecat", line, re.I) and line not in seen:
            seen.append(line)
    return seen


class Bench:
    def __init__(self, tiles, truth):
        sys.path.insert(0, os.path.join(ROOT, "Benchmarks", "registration"))
        from evaluate import error

        self.error = error
        self.tiles, self.truth = tiles, truth
        self.out = os.path.join(SCRATCH, "out")
        self.logs = os.path.join(SCRATCH, "logs")
        os.makedirs(self.out, exist_ok=True)
        os.makedirs(self.logs, exist_ok=True)
        self.samples = []
        self.warnings = {}

    def record(self, task, tool, r, log, **sample):
        sample.update(task=task, tool=tool, run=r)
        self.samples.append(sample)
        for w in warnings_of(log):
            self.warnings.setdefault(f"{task}/{tool}", [])
            if w not in self.warnings[f"{task}/{tool}"]:
                self.warnings[f"{task}/{tool}"].append(w)
        print(f"  {task:12} {tool:22} run {r}: whole {sample['wall_s']:.2f} s, in-process "
              f"{sample.get('inprocess_s') or float('nan'):.2f} s, peak RSS {sample['rss'] / 2**20:.0f} MiB"
              + (f", RMS {sample['rms']:.3f} / max {sample['max']:.3f} vox" if "rms" in sample else ""),
              file=sys.stderr)

    def log(self, name, r):
        return os.path.join(self.logs, f"{name}-{r}.log")

    # --- registration
    def tessera_register(self, r):
        out = os.path.join(self.out, "tessera-refined.json")
        log = self.log("tessera-register", r)
        text, wall, rss, cpu = run([BIN, "refine-positions", *self.tiles, "-o", out, "--overwrite", "--quiet",
                                    "--threads", THREADS], log)
        m = re.search(r"(\d+) pairs in ([0-9.]+) s", text)
        e = self.error(self.truth, out)
        self.record("registration", "Tessera", r, log, wall_s=wall, rss=rss, cpu_s=cpu,
                    inprocess_s=float(m[2]) if m else None, pairs=int(m[1]) if m else None, rms=e["rms"],
                    max=e["max"], line=text.strip())

    def mvs_register(self, r):
        out = os.path.join(self.out, "mvs-registered.json")
        log = self.log("mvs-register", r)
        _, wall, rss, cpu = run([PEERS_PY, os.path.join(HERE, "peers.py"), "mvs-register", *self.tiles, "-o", out,
                                 "--channel", 0, "--threads", THREADS], log)
        res = json.load(open(out))
        e = self.error(self.truth, out)
        self.record("registration", "multiview-stitcher", r, log, wall_s=wall, rss=rss, cpu_s=cpu,
                    inprocess_s=res["seconds"], read_s=res["read_seconds"], pairs=res["pairs"],
                    pair_list=res["pair_list"], rms=e["rms"], max=e["max"],
                    positions_um=[t["position_um"] for t in res["tiles"]])
        if r == 1:
            self.validate_conversion(res)

    def validate_conversion(self, res):
        """The stage transforms, converted to positions by the same function as the registered ones, must give
        the stated positions and evaluate.py's error of the stated positions."""
        import numpy as np

        stage = {"tiles": [{"tile": t["tile"], "position_um": t["stage_position_um"]} for t in res["tiles"]]}
        stage_path = os.path.join(self.out, "mvs-stage.json")
        json.dump(stage, open(stage_path, "w"))
        stated_path = os.path.join(self.out, "stated.json")
        stated_manifest(self.tiles, stated_path)
        e_conv, e_eval = self.error(self.truth, stage_path), self.error(self.truth, stated_path)
        truth = json.load(open(self.truth))
        diff = float(np.max(np.abs(np.array([t["stage_position_um"] for t in res["tiles"]])
                                   - np.array(truth["stated_positions_um"]))))
        ok = abs(e_conv["rms"] - e_eval["rms"]) < 1e-9 and abs(e_conv["max"] - e_eval["max"]) < 1e-9 and diff < 1e-9
        # The sign: the registered correction (registered − stage) applied the other way round must be much
        # worse than the stated positions, and the registered positions must agree with Tessera's.
        reg = np.array([t["position_um"] for t in res["tiles"]])
        stg = np.array([t["stage_position_um"] for t in res["tiles"]])
        flipped_path = os.path.join(self.out, "mvs-flipped.json")
        json.dump({"tiles": [{"tile": t["tile"], "position_um": p.tolist()}
                             for t, p in zip(res["tiles"], 2 * stg - reg)]}, open(flipped_path, "w"))
        from evaluate import positions
        tess = positions(json.load(open(os.path.join(self.out, "tessera-refined.json"))))
        vox = np.asarray(truth["voxel_size_um"], float)
        d = (reg - np.array([tess[t["tile"]] for t in res["tiles"]])) / vox
        d -= d.mean(axis=0)
        self.validation = {"stage_through_conversion": e_conv, "stated_through_evaluate": e_eval,
                           "max_abs_position_difference_um": diff, "ok": ok,
                           "registered_correction_sign_flipped": self.error(self.truth, flipped_path),
                           "max_difference_to_tessera_vox": float(np.sqrt((d ** 2).sum(axis=1)).max())}
        if not ok:
            sys.exit(f"multiview-stitcher position conversion does not reproduce the stated positions: "
                     f"{json.dumps(self.validation)}")

    def skimage_register(self, r):
        out = os.path.join(self.out, "skimage.json")
        log = self.log("skimage-register", r)
        _, wall, rss, cpu = run([PY, os.path.join(ROOT, "Benchmarks/registration/skimage_baseline.py"),
                                 *self.tiles, "-o", out, "--channel", 0], log)
        res = json.load(open(out))
        e = self.error(self.truth, out)
        self.record("registration", "scikit-image baseline", r, log, wall_s=wall, rss=rss, cpu_s=cpu,
                    inprocess_s=res["seconds"], pairs=res["pairs"], rms=e["rms"], max=e["max"])

    # --- fusion (every tool at the stated positions: the tiles as input)
    def tessera_fuse(self, r):
        out = os.path.join(self.out, "tessera.ome.zarr")
        shutil.rmtree(out, ignore_errors=True)  # not --overwrite: deleting the last output is not fusion work
        log = self.log("tessera-fuse", r)
        text, wall, rss, cpu = run([BIN, "fuse", *self.tiles, "-o", out, "--threads", THREADS, "--quiet"], log)
        m = re.search(r"fused (\d+) voxels in ([0-9.]+) s .*whole job ([0-9.]+) s", text)
        if not m:
            sys.exit(f"cannot parse: {text}")
        self.record("fusion", "Tessera", r, log, wall_s=wall, rss=rss, cpu_s=cpu, inprocess_s=float(m[3]),
                    fusion_step_s=float(m[2]), voxels=int(m[1]), line=text.strip())

    def mvs_fuse(self, r):
        out = os.path.join(self.out, "mvs.zarr")
        shutil.rmtree(out, ignore_errors=True)
        log = self.log("mvs-fuse", r)
        text, wall, rss, cpu = run([PEERS_PY, os.path.join(HERE, "peers.py"), "mvs-fuse", *self.tiles,
                                    "--out", out, "--threads", THREADS], log)
        res = json.loads(text.strip().splitlines()[-1])
        self.record("fusion", "multiview-stitcher", r, log, wall_s=wall, rss=rss, cpu_s=cpu,
                    inprocess_s=res["seconds"], read_s=res["read_seconds"], voxels=res["voxels"], shape=res["shape"])

    def dask_fuse(self, r):
        out = os.path.join(self.out, "daskfusion.zarr")
        shutil.rmtree(out, ignore_errors=True)
        log = self.log("daskfusion", r)
        text, wall, rss, cpu = run([PY, os.path.join(ROOT, "Benchmarks/fusion/daskfusion.py"), *self.tiles,
                                    "--out", out, "--threads", THREADS], log)
        res = json.loads(text.strip().splitlines()[-1])
        self.record("fusion", "DaskFusion approach", r, log, wall_s=wall, rss=rss, cpu_s=cpu,
                    inprocess_s=res["seconds"], read_s=res["read_seconds"], voxels=res["voxels"])


ROWS = [("registration", "Tessera"), ("registration", "multiview-stitcher"),
        ("registration", "scikit-image baseline"),
        ("fusion", "Tessera"), ("fusion", "multiview-stitcher"), ("fusion", "DaskFusion approach")]


def table(bench, reg_voxels):
    def mm(values, fmt="{:.2f}"):
        values = [v for v in values if v is not None]
        if not values:
            return "—"
        if len(values) == 1:
            return fmt.format(values[0])
        return f"{fmt.format(min(values))} / {fmt.format(statistics.median(values))}"

    def of(task, tool):
        return [s for s in bench.samples if s["task"] == task and s["tool"] == tool]

    print(f"\n{CASE}: 9 tiles of 64×256×256 uint16, 2 channels, gzip 1, chunks 16×128×128; {THREADS} threads. "
          f"Times in s, min / median of the runs (n); throughput and ratios from the medians of whole-process wall; "
          f"CPU = user + system time of the process.\n")
    print("| task | tool | n | whole process (s) | in-process (s) | Mvoxel/s | CPU (s, median) | peak RSS (MiB, max) | "
          "RMS / max error (vox) | whole-process time / Tessera's |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for task, tool in ROWS:
        ss = of(task, tool)
        if not ss:
            continue
        walls = [s["wall_s"] for s in ss]
        med = statistics.median(walls)
        tess = statistics.median(s["wall_s"] for s in of(task, "Tessera"))
        voxels = reg_voxels if task == "registration" else ss[-1]["voxels"]
        if task == "registration":
            rms = sorted({round(s["rms"], 6) for s in ss})
            mx = sorted({round(s["max"], 6) for s in ss})
            err = f"{ss[-1]['rms']:.3f} / {ss[-1]['max']:.3f}"
            if len(rms) > 1 or len(mx) > 1:
                err += f" (varies: RMS {min(rms):.3f}–{max(rms):.3f}, max {min(mx):.3f}–{max(mx):.3f})"
        else:
            err = "—"
        ratio = "1 (reference)" if tool == "Tessera" else f"{med / tess:.1f}×"
        print(f"| {task} | {tool} | {len(ss)} | {mm(walls)} | {mm([s.get('inprocess_s') for s in ss])} | "
              f"{voxels / med / 1e6:.1f} | {statistics.median(s['cpu_s'] for s in ss):.2f} | "
              f"{max(s['rss'] for s in ss) / 2**20:.0f} | {err} | {ratio} |")
    v = bench.validation
    st = v["stated_through_evaluate"]
    print(f"| registration | (stated positions, no registration) | — | — | — | — | — | — | "
          f"{st['rms']:.3f} / {st['max']:.3f} | — |")


def bench():
    if REPEAT < 1 or SLOW_REPEAT < 1:
        sys.exit("REPEAT and SLOW_REPEAT must be at least 1 (the accuracy checks need a run of every tool)")
    os.chdir(ROOT)
    os.makedirs(SCRATCH, exist_ok=True)
    if not os.access(BIN, os.X_OK):
        sys.exit(f"no Tessera binary at {BIN} (make release, or TESSERA_BIN)")
    tiles, truth = dataset()
    reg_voxels = input_voxels(tiles, 0)
    b = Bench(tiles, truth)
    load = open("/proc/loadavg").read().split()[:3]
    print(f"load average at start: {' '.join(load)}; REPEAT={REPEAT} SLOW_REPEAT={SLOW_REPEAT} THREADS={THREADS}",
          file=sys.stderr)
    start = time.perf_counter()
    # Interleaved: every round runs each tool once, so slow drifts of the machine's load hit all tools alike.
    for r in range(1, max(REPEAT, SLOW_REPEAT) + 1):
        if r <= REPEAT:
            b.tessera_register(r)
        if r <= SLOW_REPEAT:
            b.mvs_register(r)
            b.skimage_register(r)
        if r <= REPEAT:
            b.tessera_fuse(r)
        if r <= SLOW_REPEAT:
            b.mvs_fuse(r)
            b.dask_fuse(r)
    end_load = open("/proc/loadavg").read().split()[:3]
    table(b, reg_voxels)
    fusion_shapes = {s["tool"]: s.get("shape") or s["voxels"] for s in b.samples if s["task"] == "fusion"}
    pairs = {s["tool"]: s.get("pairs") for s in b.samples if s["task"] == "registration"}
    print(f"\nload average at start {' '.join(load)}, at end {' '.join(end_load)}; benchmark "
          f"{time.perf_counter() - start:.0f} s")
    print(f"registration input: channel 0, {reg_voxels / 1e6:.1f} Mvoxel; pairs registered: "
          + ", ".join(f"{k} {v}" for k, v in pairs.items()))
    print("fusion output (voxels, or multiview-stitcher's t,c,z,y,x shape): "
          + ", ".join(f"{k} {v}" for k, v in fusion_shapes.items()))
    print(f"position conversion check (multiview-stitcher stage transforms vs evaluate.py on the stated positions): "
          f"{json.dumps(b.validation)}")
    for k, ws in b.warnings.items():
        print(f"stderr warnings, {k}: " + " | ".join(w[:300] for w in ws[:5]))
    print("\n" + json.dumps({"case": CASE, "threads": THREADS, "repeat": REPEAT, "slow_repeat": SLOW_REPEAT,
                             "load_start": load, "load_end": end_load, "registration_input_voxels": reg_voxels,
                             "validation": b.validation, "samples": b.samples}))


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("bench", "mvs-register", "mvs-fuse"):
        sys.exit(__doc__)
    command = sys.argv[1]
    if command == "bench":
        bench()
        return
    p = argparse.ArgumentParser(prog=f"peers.py {command}")
    p.add_argument("tiles", nargs="+")
    p.add_argument("--threads", type=int, default=2)
    if command == "mvs-register":
        p.add_argument("-o", "--output", required=True)
        p.add_argument("--channel", type=int, default=0)
        mvs_register(p.parse_args(sys.argv[2:]))
    else:
        p.add_argument("--out", required=True)
        mvs_fuse(p.parse_args(sys.argv[2:]))


if __name__ == "__main__":
    main()
