#!/usr/bin/env bash
# Tessera against its peers, in one run on the same files, registration and fusion.
#
# Dataset (`tessera simulate`, written once to $SCRATCH/3x3-gzip, regenerated only when missing): the
# standard "3x3 gzip" case, 3×3 tiles of 64×256×256 uint16, 2 channels, voxel 2×0.5×0.5 µm, 15 % overlap,
# gzip level 1, HDF5 chunks 16×128×128, blobs on a noisy background; true positions integer, stated
# positions the true ones plus up to 4 voxels of jitter in y and x (truth.json has both).
#
# Registration (channel 0; every tool reads its tiles inside its timed region; all start at the stated
# positions):
#   Tessera               `tessera refine-positions TILES -o refined.json --threads $THREADS`: phase correlation
#                         on every overlapping pair, NCC-verified peaks, subpixel refinement, weighted
#                         least squares with outlier rejection
#   multiview-stitcher    (PyPI multiview-stitcher 0.1.62, `peers.py mvs-register`) registration.register on
#                         msims built from the tiles, the stage positions as transform "stage": its default
#                         pairwise phase_correlation_registration (skimage phase_cross_correlation,
#                         upsample_factor 2 in 3D, SSIM disambiguation, Spearman link quality), default
#                         "alternating_pattern" pruning (no diagonal pairs), global optimisation for
#                         translations; dask threaded scheduler with $THREADS workers,
#                         n_parallel_pairwise_regs=$THREADS
#   scikit-image baseline (Benchmarks/registration/skimage_baseline.py --channel 0) phase_cross_correlation
#                         (upsample_factor 10) on every overlapping pair + least squares; single-threaded
# Error against truth.json as Benchmarks/registration/evaluate.py computes it: per tile (refined − true
# position) / voxel size, minus the mean over tiles; RMS of the norms and the largest, in voxels. The
# multiview-stitcher transforms are converted to positions (world position of voxel 0), and that
# conversion, applied to its "stage" transforms, is checked to give the stated positions and the same
# error as evaluate.py on the stated positions (the extra table row).
#
# Fusion (both channels, every tool at the stated positions, order-1 interpolation, output uint16):
#   Tessera               `tessera fuse TILES -o out.ome.zarr --threads $THREADS`: defaults (cosine-feathered
#                         linear blending, blosc-lz4 OME-Zarr v3, its default pyramid: 1 extra level here)
#   multiview-stitcher    (`peers.py mvs-fuse`) fusion.fuse(images=sims, transform_key="stage",
#                         interpolation_order=1): default weighted_average_fusion with its smooth blending
#                         weights, union output box, default 256³ chunks (64×256×256), computed with the dask
#                         threaded scheduler ($THREADS workers) into a Zarr v3 array, blosc lz4 shuffle; no pyramid
#   DaskFusion approach   (Benchmarks/fusion/daskfusion.py --threads $THREADS) dask map_blocks +
#                         scipy.ndimage.affine_transform, order 1, max blending, Zarr v3 blosc lz4, 64×128×128
#                         chunks, no pyramid
#
# Columns: whole process = wall time of the process, start to exit, from `/usr/bin/time -f "%e %M %U %S"`
# (Python tools: interpreter start and imports included), with its peak RSS and CPU time (user + system);
# in-process = what the tool reports (Tessera refine-positions: its summary's "pairs in S s"; Tessera
# fuse: "whole job S s"; Python tools: from before reading the tiles to the result); throughput = input
# voxels of channel 0 (registration) or output voxels (fusion) / median whole-process time; ratio = the
# peer's median whole-process time / Tessera's for the same task. Runs are interleaved (each round runs
# every tool once). The JSON of every sample follows the table; each tool's stderr is in $SCRATCH/logs.
#
# Run from anywhere; needs python3 and `make release`'s build (or TESSERA_BIN). Creates .venv-peers (about
# 700 MB: Benchmarks/requirements.txt + Benchmarks/peers/requirements.txt) unless PEERS_PYTHON is given.
# Environment:
#   REPEAT=3       runs of each tool (min and median)     SLOW_REPEAT=REPEAT  runs of the Python tools
#   THREADS=2      threads / dask workers per tool        SCRATCH=/tmp/tessera-bench/peers  data and outputs
#   PEERS_PYTHON   a python with multiview-stitcher, h5py, dask, scikit-image, zarr (skips the venv)
#   PYTHON         the python for the scikit-image baseline and the DaskFusion approach (default PEERS_PYTHON)
#   TESSERA_BIN    the tessera binary (default .build/release/tessera)
# Takes about 55 s per round on an idle 2-core machine (3 min for REPEAT=3), the multiview-stitcher runs most
# of it; more under load.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${TESSERA_BIN:-.build/release/tessera}
[ -x "$bin" ] || make release
if [ -z "${PEERS_PYTHON:-}" ]; then
  [ -x .venv-peers/bin/python ] || python3 -m venv .venv-peers
  .venv-peers/bin/pip install -q --disable-pip-version-check -r Benchmarks/requirements.txt \
    -r Benchmarks/peers/requirements.txt
  export PEERS_PYTHON=.venv-peers/bin/python
fi
export TESSERA_BIN=$bin
exec "$PEERS_PYTHON" Benchmarks/peers/peers.py bench "$@"
