"""The bundled sample is what its documented generator makes (voxel for voxel, same XML geometry)."""
import json
from pathlib import Path

import h5py
import numpy as np

SAMPLE = Path(__file__).resolve().parents[2] / "Datasets" / "sample"


def test_bundled_sample_matches_its_generator(tmp_path, run_tessera):
    run_tessera("simulate", tmp_path, "--format", "bdv", "--levels", 2, "--tile-shape", "24,96,96", "--grid", "1,2,2",
                "--channels", 2, "--voxel-size", "2.0,0.406,0.406", "--jitter", 3, "--seed", 1)
    with h5py.File(SAMPLE / "dataset.h5", "r") as a, h5py.File(tmp_path / "dataset.h5", "r") as b:
        names = []
        a.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        assert len(names) == 8 * 2 + 8 * 2  # cells of 8 setups × 2 levels, resolutions + subdivisions per setup
        for name in names:
            np.testing.assert_array_equal(a[name][...], b[name][...])
    mine = json.loads(run_tessera("info", SAMPLE / "dataset.xml", "--json").stdout)
    fresh = json.loads(run_tessera("info", tmp_path / "dataset.xml", "--json").stdout)
    for key in ("views", "overlaps", "worldLowerUm", "worldUpperUm"):
        mine_v, fresh_v = json.dumps(mine[key], sort_keys=True), json.dumps(fresh[key], sort_keys=True)
        assert mine_v.replace(str(SAMPLE), "") == fresh_v.replace(str(tmp_path), "")
