#!/usr/bin/env bash
# Start-up and planning for 10,000 tiles: a JSON manifest of a 100×100 grid of 512×512 tiles (15 %
# overlap, small subpixel offsets) that all point at one small HDF5 dataset (planning reads no
# voxels), and the same grid with one HDF5 file per tile; then `fuse --dry-run`, `refine-positions
# --dry-run` and `info` on each, timed as whole processes. Run from the repository root after `make release venv`.
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
# The same grid with one HDF5 file per tile, as acquisition scripts write them.
import os
os.makedirs(f"{d}/files", exist_ok=True)
if not os.path.exists(f"{d}/files/.done"):
    for t in tiles:
        with h5py.File(f"{d}/files/tile_{t['tile']:05d}.h5", "w") as f:
            f.create_dataset("img", data=np.zeros((512, 512), np.uint16), chunks=(128, 512), compression="gzip")
    open(f"{d}/files/.done", "w").close()
files = [dict(t, file=f"files/tile_{t['tile']:05d}.h5") for t in tiles]
json.dump({"tessera_manifest": 1, "voxel_size_um": [1, 1], "tiles": files}, open(f"{d}/m10k-files.json", "w"))
PY
for m in "$scratch/m10k.json" "$scratch/m10k-files.json"; do
  echo "== $(basename "$m")"
  /usr/bin/time -f "fuse --dry-run: %e s, %M KiB" "$bin" fuse "$m" -o "$scratch/x.zarr" --dry-run > /dev/null
  /usr/bin/time -f "refine-positions --dry-run: %e s, %M KiB" "$bin" refine-positions "$m" -o "$scratch/x.json" \
    --dry-run > /dev/null
  /usr/bin/time -f "info: %e s, %M KiB" "$bin" info "$m" > /dev/null
done
