#!/usr/bin/env bash
# The demo: run the most complete pipeline that exists on the bundled sample.
# Usage: Datasets/demo.sh TESSERA_BIN OUTPUT_DIR
set -euo pipefail
bin=${1:-.build/release/tessera}
out=${2:-demo-out}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$out"
mkdir -p "$out/pictures"
mkdir -p "$out"
echo "== tessera $("$bin" --version)"
echo
echo "== 1. describe the bundled BigStitcher sample (Datasets/sample)"
"$bin" info "$here/sample/dataset.xml"
echo
echo "== 2. read a region of tile 3, channel 1 exactly (-> $out/tile3-ch1.npy)"
"$bin" extract "$here/sample/dataset.xml" --tile 3 --channel 1 --box 0:24,0:96,0:48 -o "$out/tile3-ch1.npy"
echo
echo "== 3. apply a manual correction to tile 1 and write it back as a new XML BigStitcher can open"
"$bin" shift-tiles "$here/sample/dataset.xml" --shift 1:0,0.406,-0.812 -o "$out/shifted.xml"
"$bin" info "$out/shifted.xml" | sed -n '1,3p;/t0\/s2 /p;/t0\/s3 /p'
echo
echo "== 4. correct the stage positions (off by up to 3 voxels): phase correlation + global solve"
"$bin" refine-positions "$here/sample/dataset.xml" -o "$out/refined.xml" --report "$out/links.json" --quiet
"$bin" preview "$here/sample/dataset.xml" --layout --report "$out/links.json" -o "$out/pictures/layout.png"
echo "   against the sample's known true positions (Datasets/sample/truth.json):"
"$bin" info "$here/sample/dataset.xml" --json > "$out/info-stated.json"
"$bin" info "$out/refined.xml" --json > "$out/info-refined.json"
(cd "$out" && python3 "$here/refinement_error.py" "$here/sample/truth.json" info-stated.json info-refined.json) | sed 's/^/   /'
echo
echo "== 5. fuse the refined tiles into OME-Zarr 0.5 (feathered blending, pyramid) -> $out/fused.ome.zarr"
"$bin" fuse "$out/refined.xml" -o "$out/fused.ome.zarr" --pyramid 2
echo
echo "== 6. the written levels (c, z, y, x)"
for level in 0 1; do
  printf 'level %s: ' "$level"; tr -d ' \n' < "$out/fused.ome.zarr/$level/zarr.json" | grep -o '"shape":\[[^]]*\]'
done
echo
echo "== 7. look at it: projections, a colour composite and side views with scale bars (PNG)"
"$bin" preview "$out/fused.ome.zarr" -o "$out/pictures"
echo
echo "== 8. reading speed: HDF5's H5Dread against Tessera's parallel chunk reader (gzip tiles)"
"$bin" bench read --tile-shape 32,256,256 --grid 1,2,2 --repetitions 2
