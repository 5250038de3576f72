#!/usr/bin/env bash
# Inflate speed per core on real HDF5 gzip chunks: zlib vs ISA-L vs libdeflate (the numbers behind
# README "Reading speed"). Run from the repository root after `make release venv`; needs gcc and
# libisal-dev, libdeflate-dev and libhdf5-dev (all installed by `make deps`).
#   REAL=<a uint16 .npy volume> (default Datasets/real/nuclei_crop.npy)  CPU=<core> (default 1)
#   REPS=<passes> (default 21)
set -euo pipefail
bin=${TESSERA_BIN:-.build/release/tessera}
py=${PYTHON:-.venv/bin/python}
scratch=${SCRATCH:-/tmp/tessera-inflate-bench}
real=${REAL:-Datasets/real/nuclei_crop.npy}
cpu=${CPU:-1}
reps=${REPS:-21}
mkdir -p "$scratch"
gcc -O2 -o "$scratch/inflate_bench" Benchmarks/inflate/inflate_bench.c $(pkg-config --cflags --libs hdf5-serial) \
  -lz -ldeflate -lisal
if [ ! -f "$scratch/sim/tile_000.h5" ]; then
  "$bin" simulate "$scratch/sim" --tile-shape 64,256,256 --grid 1,1,2 --deflate 1 > /dev/null
fi
"$py" Benchmarks/inflate/make_data.py "$scratch/sim/tile_000.h5" "$scratch/sim-rechunked.h5"
"$py" Benchmarks/inflate/make_data.py "$real" "$scratch/real.h5"
run() { taskset -c "$cpu" "$scratch/inflate_bench" "$@" "$reps"; }
echo "== synthetic tile as tessera simulate writes it (64x64x64 chunks)"
run "$scratch/sim/tile_000.h5" ch0
for d in c16 c16s c4 c4s; do run "$scratch/sim-rechunked.h5" "$d"; done
echo "== real: $real"
for d in c16 c16s c4 c4s; do run "$scratch/real.h5" "$d"; done
