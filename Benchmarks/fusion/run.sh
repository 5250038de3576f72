#!/usr/bin/env bash
# Fusion benchmarks (release build; run from the repository root after `make release` and `make venv`,
# plus `.venv/bin/pip install -r Benchmarks/requirements.txt` for the Python baseline):
#   1. tessera fuse (feathered blending) vs the DaskFusion approach (Benchmarks/fusion/daskfusion.py,
#      max blending, 2 threads) on 3x3 tiles of 64x256x256 uint16, 2 channels, 15 % overlap,
#      subpixel stage positions (jitter 2 voxels);
#   2. against the copy limit (tessera bench copy: same reads, same codec, no resampling);
#   3. peak RSS of a fusion whose output is >10x its memory budget (BIG=1; ~10 GB of scratch).
# Every number is from one run on this machine, so ratios are what to compare.
set -euo pipefail
bin=${TESSERA_BIN:-.build/release/tessera}
py=${PYTHON:-.venv/bin/python}
scratch=${SCRATCH:-/tmp/tessera-bench}
threads=${THREADS:-2}
mkdir -p "$scratch"
data="$scratch/tiles-3x3"
if [ ! -f "$data/tile_008.h5" ]; then
  "$bin" simulate "$data" --tile-shape 64,256,256 --grid 1,3,3 --channels 2 --overlap 0.15 --jitter 2 --seed 1 --deflate 0
fi
echo "== tessera fuse, feathered blending, $threads threads"
"$bin" fuse "$data"/tile_*.h5 -o "$scratch/tessera.zarr" --overwrite --pyramid 1 --threads "$threads" --quiet
echo "== tessera fuse, max blending, $threads threads"
"$bin" fuse "$data"/tile_*.h5 -o "$scratch/tessera-max.zarr" --overwrite --pyramid 1 --threads "$threads" --blend max --quiet
echo "== DaskFusion approach (dask map_blocks + scipy affine_transform order=1, max), $threads threads"
"$py" Benchmarks/fusion/daskfusion.py "$data"/tile_*.h5 --out "$scratch/daskfusion.zarr" --threads "$threads"
echo "== copy limit: read the tiles, write the same codec, no resampling"
"$bin" bench copy "$data"/tile_*.h5 --threads "$threads"
if [ "${BIG:-0}" = 1 ]; then
  big="$scratch/tiles-5x5"
  if [ ! -f "$big/tile_024.h5" ]; then
    "$bin" simulate "$big" --tile-shape 160,512,512 --grid 1,5,5 --channels 2 --overlap 0.15 --jitter 2 --seed 2 --deflate 0
  fi
  echo "== bounded memory: --memory 256M, output 2 x 160 x 2252 x 2252 uint16 (3.2 GB)"
  /usr/bin/time -f "peak RSS %M KiB, wall %e s" "$bin" fuse "$big"/tile_*.h5 -o "$scratch/big.zarr" --overwrite \
    --memory 256M --threads "$threads" --quiet
fi
