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
    # The true positions the demo measures its refinement against.
    assert json.loads((SAMPLE / "truth.json").read_text()) == json.loads((tmp_path / "truth.json").read_text())


def test_refinement_error_script(tmp_path, run_tessera):
    """Datasets/refinement_error.py (the demo's measure) on the sample: stated positions are
    voxels off, refined ones well under a tenth of a voxel."""
    import subprocess
    import sys
    stated = tmp_path / "stated.json"
    stated.write_text(run_tessera("info", SAMPLE / "dataset.xml", "--json").stdout)
    run_tessera("refine-positions", SAMPLE / "dataset.xml", "-o", tmp_path / "refined.xml", "--quiet")
    refined = tmp_path / "refined.json"
    refined.write_text(run_tessera("info", tmp_path / "refined.xml", "--json").stdout)
    out = subprocess.run([sys.executable, SAMPLE.parent / "refinement_error.py", SAMPLE / "truth.json", stated, refined],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    rms = [float(line.split("RMS error ")[1].split()[0]) for line in out]
    assert rms[0] > 1 and rms[1] < 0.1, out
