"""Errors of refined positions against `truth.json` (written by `tessera simulate`), and the table.

  evaluate.py error TRUTH.json REFINED.json   -> {"rms": .., "max": ..} (voxels)
  evaluate.py table RESULTS.jsonl             -> the benchmark table (min and median over repeats)

REFINED.json is Tessera's refined manifest (each tile's `affine`, last column = position µm) or the
baseline's output (`position_um`). Error per tile: (refined − true position) / voxel size, minus the
mean over tiles (a common translation is not observable); RMS over tiles of the vector norm; max =
the largest norm.
"""
import json
import statistics
import sys

import numpy as np


def positions(refined):
    out = {}
    for t in refined["tiles"]:
        if "affine" in t:
            p = [row[-1] for row in t["affine"]]
        else:
            p = t["position_um"]
        out.setdefault(int(t["tile"]), p)  # every view of a tile moves together
    return out


def error(truth_path, refined_path):
    truth = json.load(open(truth_path))
    refined = positions(json.load(open(refined_path)))
    true = np.asarray(truth["true_positions_um"], float)
    vox = np.asarray(truth["voxel_size_um"], float)
    pos = np.asarray([refined[t] for t in range(len(true))], float)
    err = (pos - true) / vox
    err -= err.mean(axis=0)
    norms = np.sqrt((err ** 2).sum(axis=1))
    return {"rms": float(np.sqrt((norms ** 2).mean())), "max": float(norms.max())}


def table(path):
    rows = {}
    order = []
    for line in open(path):
        r = json.loads(line)
        if r["case"] not in rows:
            order.append(r["case"])
        rows.setdefault(r["case"], []).append(r)

    def times(rs, key):
        v = [r[key] for r in rs if r.get(key) is not None]
        if not v:
            return None, None
        return min(v), statistics.median(v)

    repeats = max(len(v) for v in rows.values())

    def fmt(pair):
        lo, med = pair
        if lo is None:
            return "—"
        return f"{lo:.2f}" if repeats == 1 else f"{lo:.2f} / {med:.2f}"

    unit = "s" if repeats == 1 else f"s, min / median of {repeats}"
    print(f"| case | tiles | Tessera whole ({unit}) | Tessera in-process | baseline whole | baseline in-process "
          "| whole ratio | in-process ratio | Tessera RMS / max err (vox) | baseline RMS / max err (vox) |")
    print("| --- " * 10 + "|")
    for case in order:
        rs = rows[case]
        tw, ti = times(rs, "tessera_whole"), times(rs, "tessera_inprocess")
        bw, bi = times(rs, "baseline_whole"), times(rs, "baseline_inprocess")
        last = rs[-1]

        def ratio(b, t):
            return f"{b[1] / t[1]:.1f}×" if b[1] and t[1] else "—"

        print(f"| {case} | {last['tiles']} | {fmt(tw)} | {fmt(ti)} | {fmt(bw)} | {fmt(bi)} | {ratio(bw, tw)} | "
              f"{ratio(bi, ti)} | {last['tessera_rms']:.3f} / {last['tessera_max']:.3f} | "
              + (f"{last['baseline_rms']:.3f} / {last['baseline_max']:.3f} |" if last.get("baseline_rms") is not None
                 else "— |"))
    print("ratio = baseline median / Tessera median (> 1: Tessera faster)")


if __name__ == "__main__":
    if sys.argv[1] == "error":
        print(json.dumps(error(sys.argv[2], sys.argv[3])))
    elif sys.argv[1] == "table":
        table(sys.argv[2])
    else:
        sys.exit(__doc__)
