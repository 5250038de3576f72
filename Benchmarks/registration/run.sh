#!/usr/bin/env bash
# refine-positions vs scikit-image phase_cross_correlation(upsample_factor=10) + least squares, on the
# same synthetic acquisition (3x3 tiles of 48x256x256 uint16, 15 % overlap, stage errors up to 5 voxels).
# Run from the repository root after `make release venv` and `pip install -r Benchmarks/requirements.txt`.
set -euo pipefail
bin=${TESSERA_BIN:-.build/release/tessera}
py=${PYTHON:-.venv/bin/python}
scratch=${SCRATCH:-/tmp/tessera-bench}
data="$scratch/registration-3x3"
if [ ! -f "$data/tile_008.h5" ]; then
  "$bin" simulate "$data" --tile-shape 48,256,256 --grid 1,3,3 --channels 1 --overlap 0.15 --jitter 5 --seed 7 --deflate 0
fi
# Both sides are timed in-process, from opening the data to the solved positions (Tessera also
# writes its output); process start-up (Swift runtime, Python imports) is left out of both.
for threads in 2 1; do
  echo "== tessera refine-positions ($threads thread(s))"
  start=$(date +%s.%N)
  summary=$("$bin" refine-positions "$data"/tile_*.h5 -o "$scratch/refined.json" --overwrite --quiet --threads "$threads")
  end=$(date +%s.%N)
  echo "$summary"
  seconds=$(echo "$summary" | sed -n 's/.* pairs in \([0-9.]*\) s.*/\1/p')
  "$py" - "$scratch/refined.json" "$data" "$seconds" "$start" "$end" <<'PY'
import json, sys, h5py, numpy as np
m = json.load(open(sys.argv[1])); data = sys.argv[2]
with h5py.File(f"{data}/ground_truth.h5") as g: truth = g["true_positions_um"][...]
with h5py.File(f"{data}/tile_000.h5") as h: vox = np.asarray(h["ch0"].attrs["voxel_size_um"])
pos = np.array([[r[-1] for r in t["affine"]] for t in sorted(m["tiles"], key=lambda t: t["tile"])])
err = (pos - truth) / vox; err -= err.mean(axis=0)
print(json.dumps({"seconds": float(sys.argv[3]), "process_seconds": float(sys.argv[5]) - float(sys.argv[4]),
                  "rms_error_voxels": float(np.sqrt((err ** 2).sum(axis=1).mean()))}))
PY
done
echo "== scikit-image phase_cross_correlation(upsample_factor=10) + least squares"
"$py" Benchmarks/registration/skimage_baseline.py "$data"
