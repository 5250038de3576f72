#!/usr/bin/env bash
# The demo: run the most complete pipeline that exists on the bundled sample.
# Usage: Datasets/demo.sh TESSERA_BIN OUTPUT_DIR
set -euo pipefail
bin=${1:-.build/release/tessera}
out=${2:-demo-out}
rm -rf "$out"
mkdir -p "$out"
echo "== tessera $("$bin" --version)"
echo "== simulate a 2x2-tile, 2-channel 3D acquisition with stage errors up to 3 voxels"
"$bin" simulate "$out/tiles" --tile-shape 32,128,128 --grid 1,2,2 --channels 2 \
  --voxel-size 2.0,0.406,0.406 --jitter 3 --seed 1
ls -l "$out/tiles"
