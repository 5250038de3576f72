#!/usr/bin/env bash
# FFTW r2c + c2r per element (FFTW_ESTIMATE, best of 20) on the overlap shapes the 2D and 3D
# registration benchmarks transform, in every axis order: the FFT's share of the 3D/2D
# phase-correlation ratio (README, Performance). Needs libfftw3-dev and a C compiler.
set -euo pipefail
cd "$(dirname "$0")"
cc -O2 shapes.c -lfftw3f -o /tmp/tessera-fft-shapes
/tmp/tessera-fft-shapes
