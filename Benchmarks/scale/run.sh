#!/usr/bin/env bash
# Throughput of 1, 2 and 4 processes fusing one output on this machine: the 3×3-tile 64×256×256
# 2-channel gzip case of Benchmarks/fusion (16×128×128 chunks, simulated), fused whole-process by
# `tessera fuse` alone and by `mpirun -np P tessera fuse` with the cores divided among the ranks
# (the last rank to finish builds the rest of the pyramid and the metadata). Runs are interleaved,
# REPEAT rounds; prints min and median wall time (mpirun's start-up included) and checks that
# every run's chunks are byte-identical to the single process's. Run from the repository root
# after `make release`.
set -euo pipefail
bin=$(realpath "${TESSERA_BIN:-.build/release/tessera}")
repeat=${REPEAT:-5}
cores=$(nproc)
scratch=${SCRATCH:-/tmp/tessera-bench}/scale
mkdir -p "$scratch"
if [ ! -f "$scratch/acq/tile_008.h5" ]; then
  "$bin" simulate "$scratch/acq" --tile-shape 64,256,256 --grid 1,3,3 --channels 2 --jitter 2 --seed 3 \
    --deflate 1 --chunks 16,128,128 > /dev/null
fi
tiles=("$scratch"/acq/tile_*.h5)
mpi=(mpirun --oversubscribe --allow-run-as-root --bind-to none)
declare -A times
for round in $(seq "$repeat"); do
  for procs in 1 2 4; do
    out="$scratch/out-$procs.zarr"
    rm -rf "$out"
    threads=$(( cores / procs > 0 ? cores / procs : 1 ))
    start=$(date +%s.%N)
    if [ "$procs" = 1 ]; then
      "$bin" fuse "${tiles[@]}" -o "$out" --threads "$threads" --quiet > /dev/null
    else
      "${mpi[@]}" -np "$procs" "$bin" fuse "${tiles[@]}" -o "$out" --threads "$threads" --quiet > /dev/null
    fi
    end=$(date +%s.%N)
    times[$procs]+="$(echo "$end - $start" | bc) "
    if [ "$procs" != 1 ]; then
      diff -rq -x .tessera -x zarr.json "$scratch/out-1.zarr" "$out" > /dev/null \
        || { echo "$procs processes: output differs from the single process's" >&2; exit 1; }
    fi
  done
done
echo "3x3 gzip 64x256x256, 2 channels, $cores cores, $repeat rounds (whole-process wall time, s)"
for procs in 1 2 4; do
  threads=$(( cores / procs > 0 ? cores / procs : 1 ))
  python3 -c "
import statistics, sys
t = sorted(map(float, sys.argv[3].split()))
print(f'{sys.argv[1]} process(es) x {sys.argv[2]} thread(s): min {t[0]:.2f}  median {statistics.median(t):.2f}')
" "$procs" "$threads" "${times[$procs]}"
done
