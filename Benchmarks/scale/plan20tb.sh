#!/usr/bin/env bash
# The split of a 2,000-tile, 20 TB fusion among 256 processes, from the plan alone: a JSON manifest of
# a 50×40 grid of 1200×2048×2048 uint16 tiles (10 GB each, 10 % overlap, small stage offsets) that all
# point at one HDF5 dataset whose chunks were never written (planning reads no voxels), then
# `fuse --dry-run --part-count 256` with 128×1024×1024 shards, timed as a whole process. Prints the
# plan's "parts" line: units, chunks per part and the largest part's predicted work over the mean.
# Run from the repository root after `make release venv`.
set -euo pipefail
bin=${TESSERA_BIN:-.build/release/tessera}
py=${PYTHON:-.venv/bin/python}
parts=${PARTS:-256}
scratch=${SCRATCH:-/tmp/tessera-bench}/plan20tb
mkdir -p "$scratch"
"$py" - "$scratch" <<'PY'
import json, sys
import h5py, numpy as np
d = sys.argv[1]
with h5py.File(f"{d}/one.h5", "w") as f:
    f.create_dataset("img", shape=(1200, 2048, 2048), dtype=np.uint16, chunks=(64, 128, 128), compression="gzip")
step = 2048 * 0.9
tiles = [{"file": "one.h5", "dataset": "img", "tile": i * 40 + j, "channel": 0,
          "position_um": [0, i * step + 0.3 * (j % 3), j * step - 0.2 * (i % 5)]}
         for i in range(50) for j in range(40)]
json.dump({"tessera_manifest": 1, "voxel_size_um": [1, 1, 1], "tiles": tiles}, open(f"{d}/m2000.json", "w"))
PY
m="$scratch/m2000.json"
/usr/bin/time -f "fuse --dry-run --part-count $parts: %e s, %M KiB" "$bin" fuse "$m" -o "$scratch/x.zarr" \
  --shard 128,1024,1024 --dry-run --part-count "$parts" | grep -E "^(output|shards|bytes|parts) "
