#!/usr/bin/env python3
"""How far a dataset's tile positions are from the truth a simulation recorded, in voxels.

Usage: refinement_error.py truth.json INFO.json [INFO.json ...]
Each INFO.json is `tessera info DATASET --json`. Per tile, the position (world µm of voxel 0, the
first view of the tile) minus the true one, in voxels of that axis, less the mean over tiles (the
solve fixes positions up to a common offset); prints the RMS and the largest per-axis error.
Standard library only, so the demo needs nothing installed."""
import json
import math
import sys


def errors(truth, info):
    voxel = truth["voxel_size_um"]
    true = truth["true_positions_um"]
    first = {}
    for v in info["views"]:
        first.setdefault(v["tile"], v)
    tiles = sorted(first)
    offsets = [[(first[t]["viewToWorld"][d][-1] - true[t][d]) / voxel[d] for d in range(len(voxel))] for t in tiles]
    mean = [sum(o[d] for o in offsets) / len(offsets) for d in range(len(voxel))]
    return [[o[d] - mean[d] for d in range(len(voxel))] for o in offsets]


def main():
    truth = json.load(open(sys.argv[1]))
    for path in sys.argv[2:]:
        e = errors(truth, json.load(open(path)))
        rms = math.sqrt(sum(x * x for row in e for x in row) / len(e))
        worst = max(abs(x) for row in e for x in row)
        print(f"{path}: RMS error {rms:.3f} voxels over {len(e)} tiles, largest {worst:.3f} voxels on one axis")


if __name__ == "__main__":
    main()
