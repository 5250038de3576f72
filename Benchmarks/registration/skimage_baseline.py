"""Baseline for tessera refine-positions: scikit-image phase_cross_correlation(upsample_factor=10) on the
same overlap pairs (the overlap of each two tiles at their stated positions), then a least-squares
solve for one translation per tile (mean correction zero). Prints one JSON line with the time and the
RMS error against the ground truth written by `tessera simulate`.

Usage: skimage_baseline.py TILE_DIR [--channel 0]
"""
import argparse
import glob
import json
import time

import h5py
import numpy as np
from skimage.registration import phase_cross_correlation


def main():
    p = argparse.ArgumentParser()
    p.add_argument("tiles")
    p.add_argument("--channel", type=int, default=0)
    args = p.parse_args()
    files = sorted(glob.glob(f"{args.tiles}/tile_*.h5"))
    start = time.perf_counter()
    data, pos = [], []
    for f in files:
        with h5py.File(f, "r") as h:
            d = h[f"ch{args.channel}"]
            vox = np.asarray(d.attrs["voxel_size_um"], float)
            data.append(d[...].astype(np.float32))
            pos.append(np.asarray(d.attrs["position_um"], float) / vox)  # voxels
    n = len(data)
    links = []
    for i in range(n):
        for j in range(i + 1, n):
            lo = np.maximum(pos[i], pos[j])
            hi = np.minimum(pos[i] + data[i].shape, pos[j] + data[j].shape)
            if np.any(hi - lo < 8):
                continue
            k = np.rint(pos[i] - pos[j]).astype(int)
            delta = pos[i] - pos[j]
            a0 = np.ceil(lo - pos[i]).astype(int)
            a1 = np.floor(hi - pos[i]).astype(int)
            a0, a1 = np.maximum(a0, 0), np.minimum(a1, data[i].shape)
            b0, b1 = a0 + k, a1 + k
            ok = (b0 >= 0) & (b1 <= data[j].shape)
            b0, b1 = np.maximum(b0, 0), np.minimum(b1, data[j].shape)
            a0, a1 = b0 - k, b1 - k
            if np.any(a1 - a0 < 4):
                continue
            ra = data[i][tuple(slice(s, e) for s, e in zip(a0, a1))]
            rb = data[j][tuple(slice(s, e) for s, e in zip(b0, b1))]
            shift, error, _ = phase_cross_correlation(ra, rb, upsample_factor=10)
            # shift registers rb onto ra: rb(x) = ra(x + shift); correction of tile j in voxels:
            links.append((i, j, shift - (k - delta)))
    # Least squares: t_j - t_i = m_ij, plus sum(t) = 0.
    rows, rhs = [], []
    for i, j, m in links:
        r = np.zeros(n); r[j], r[i] = 1, -1
        rows.append(r); rhs.append(m)
    rows.append(np.ones(n)); rhs.append(np.zeros(len(pos[0])))
    t, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    seconds = time.perf_counter() - start
    with h5py.File(f"{args.tiles}/ground_truth.h5", "r") as g:
        truth = g["true_positions_um"][...] / vox
    refined = np.array(pos) + t
    err = refined - truth
    err -= err.mean(axis=0)
    print(json.dumps({"pairs": len(links), "seconds": seconds,
                      "rms_error_voxels": float(np.sqrt((err ** 2).sum(axis=1).mean()))}))


if __name__ == "__main__":
    main()
