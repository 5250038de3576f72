"""Byte-level damage to an HDF5 tile's first 4 KiB (superblock, object headers with the attribute
messages), then `tessera info` on it and an intact neighbour, in a child process: counts results,
one-line errors (status 65) and deaths by a signal (libhdf5's own crashes: README, Fuzzing).
Usage: python3 Benchmarks/fuzz/hdf5_bytes.py [TRIALS]   (after `swift build`; TESSERA_BIN to override)"""
import collections
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("TESSERA_BIN", str(ROOT / ".build" / "debug" / "tessera"))
trials = int(sys.argv[1]) if len(sys.argv) > 1 else 300
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([BIN, "simulate", f"{tmp}/t", "--tile-shape", "12,16", "--grid", "1,2", "--channels", "1",
                    "--deflate", "0"], check=True, capture_output=True)
    tile, other = f"{tmp}/t/tile_000.h5", f"{tmp}/t/tile_001.h5"
    original = open(tile, "rb").read()
    outcomes, crashes = collections.Counter(), []
    for seed in range(trials):
        rng, data = random.Random(seed), bytearray(original)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(0, min(4096, len(data)))
            kind = rng.randrange(3)
            data[at] = data[at] ^ (1 << rng.randrange(8)) if kind == 0 else rng.randrange(256) if kind == 1 else 0xFF
        open(tile, "wb").write(data)
        rc = subprocess.run([BIN, "info", tile, other], capture_output=True).returncode
        outcomes["ok" if rc == 0 else f"status {rc}" if rc > 0 else f"signal {-rc}"] += 1
        if rc < 0:
            crashes.append(seed)
print(f"{trials} trials: {dict(outcomes)}; seeds that crashed: {crashes}")
