#!/usr/bin/env bash
# Start-up and planning for 10,000 tiles: a JSON manifest of a 100×100 grid of 512×512 tiles (15 %
# overlap, small subpixel offsets) that all point at one small HDF5 dataset (planning reads no
# voxels), then `fuse --dry-run`, `refine-positions --dry-run` and `info`, each timed as a whole
# process. Run from the repository root after `make release venv`.
set -euo pipefail
bin=${TESSERA_BIN:-.build/release/tessera}
py=${PYTHON:-.venv/bin/python}
scratch=${SCRATCH:-/tmp/tessera-bench}/plan10k
mkdir -p "$scratch"
"$py" - "$scratch" <<'PY'
import json, sys
import h5py, numpy as np
d = sys.argv[1]
with h5py.File(f"{d}/one.h5", "w") as f:
    f.create_dataset("img", data=np.zeros((512, 512), np.uint16), chunks=(128, 512), compression="gzip")
step = 435
tiles = [{"file": "one.h5", "dataset": "img", "tile": i * 100 + j, "channel": 0,
          "position_um": [i * step + 0.3 * (j % 3), j * step - 0.2 * (i % 5)]}
         for i in range(100) for j in range(100)]
json.dump({"tessera_manifest": 1, "voxel_size_um": [1, 1], "tiles": tiles}, open(f"{d}/m10k.json", "w"))
PY
m="$scratch/m10k.json"
/usr/bin/time -f "fuse --dry-run: %e s, %M KiB" "$bin" fuse "$m" -o "$scratch/x.zarr" --dry-run > /dev/null
/usr/bin/time -f "refine-positions --dry-run: %e s, %M KiB" "$bin" refine-positions "$m" -o "$scratch/x.json" --dry-run > /dev/null
/usr/bin/time -f "info: %e s, %M KiB" "$bin" info "$m" > /dev/null
