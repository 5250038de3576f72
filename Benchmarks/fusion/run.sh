#!/usr/bin/env bash
# Fusion benchmark on the inputs users have: tessera fuse vs the DaskFusion approach vs the copy limit,
# on gzip-compressed chunked HDF5 tiles and a BigDataViewer project with small blocks (uncompressed
# contiguous tiles as a labelled extra row). See Benchmarks/fusion/bench.py for the cases.
# Run from the repository root after `make release venv` and
# `.venv/bin/pip install -r Benchmarks/requirements.txt`.
#   REPEAT=5 DASK_REPEAT=3 PAIRS=8 THREADS=2 SCRATCH=/tmp/tessera-bench BIG=1 CASES=3x3-gzip,...
set -euo pipefail
exec "${PYTHON:-.venv/bin/python}" Benchmarks/fusion/bench.py "$@"
