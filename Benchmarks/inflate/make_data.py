# Writes the inflate benchmark's HDF5 files with h5py: gzip level 1, chunks 16x128x128 and 4x32x32,
# with and without shuffle, from a uint16 volume (.npy, or dataset "ch0" of a tessera tile).
import sys

import h5py
import numpy as np

source, out = sys.argv[1], sys.argv[2]
if source.endswith(".npy"):
    volume = np.load(source)
else:
    with h5py.File(source) as f:
        volume = f["ch0"][...]
with h5py.File(out, "w") as f:
    for chunks, name in [((16, 128, 128), "c16"), ((4, 32, 32), "c4")]:
        chunks = tuple(min(c, s) for c, s in zip(chunks, volume.shape))
        for shuffle in (False, True):
            f.create_dataset(name + ("s" if shuffle else ""), data=volume, chunks=chunks, compression="gzip",
                             compression_opts=1, shuffle=shuffle)
