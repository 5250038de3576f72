"""Error of every link of a refine-positions report against the truth of a `tessera simulate` tiling.

Usage: links.py TRUTH.json REPORT.json
Prints, for the accepted links, the worst error (voxels) and how many are more than 1 voxel off, and
the errors of the dropped ones. A link's truth is the difference of its two tiles' true corrections
(true − stated position, in voxels).
"""
import json
import sys

import numpy as np


def main():
    truth, report = (json.load(open(p)) for p in sys.argv[1:3])
    vox = np.array(truth["voxel_size_um"])
    correction = (np.array(truth["true_positions_um"]) - np.array(truth["stated_positions_um"])) / vox
    worst, wrong, dropped = 0.0, 0, []
    for link in report["links"]:
        i, j = link["tiles"]
        if link.get("shiftVoxels") is None:
            dropped.append(None)
            continue
        error = float(np.linalg.norm(np.array(link["shiftVoxels"]) - (correction[j] - correction[i])))
        if link["accepted"]:
            worst = max(worst, error)
            wrong += error > 1
        else:
            dropped.append(round(error, 2))
    print(json.dumps({"links": len(report["links"]), "accepted_worst_error_voxels": round(worst, 3),
                      "accepted_over_1_voxel": wrong, "dropped_errors_voxels": dropped}))


if __name__ == "__main__":
    main()
