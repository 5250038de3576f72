"""Tessera reads BigStitcher/BDV projects written by npy2bdv exactly (tessera info, extract, shift-tiles)."""
import json
import re
import xml.etree.ElementTree as ET

import h5py
import npy2bdv
import numpy as np
import pytest

SHAPE = (12, 64, 80)  # z, y, x
VOXEL_XYZ = (0.5, 0.5, 2.0)  # µm
GRID = [(0, 0), (0, 1), (1, 0), (1, 1)]  # (gy, gx) per tile
STEP_PX = (56, 70)  # y, x stage step in pixels


def stacks():
    rng = np.random.default_rng(1234)
    # Full uint16 range: values above 32767 check the int16-holding-uint16 convention.
    return {(c, t): rng.integers(0, 65536, size=SHAPE, dtype=np.uint16) for c in range(2) for t in range(4)}


def make_project(path, subsamp, compression="gzip", calibration=(1, 1, 4), units="um", blockdim=(6, 32, 32)):
    data = stacks()
    bdv = npy2bdv.BdvWriter(str(path), nchannels=2, ntiles=4, subsamp=subsamp,
                            blockdim=(blockdim,) * len(subsamp), compression=compression)
    for c in range(2):
        for t, (gy, gx) in enumerate(GRID):
            affine = np.eye(4)[:3]
            affine[0, 3] = gx * STEP_PX[1]  # x, in BDV world units (= smallest voxel, 0.5 µm)
            affine[1, 3] = gy * STEP_PX[0]
            bdv.append_view(data[(c, t)], time=0, channel=c, tile=t, m_affine=affine, name_affine="Translation to Regular Grid",
                            voxel_size_xyz=VOXEL_XYZ, voxel_units=units, calibration=calibration)
    bdv.write_xml()
    bdv.close()
    return data


def info(run_tessera, xml):
    return json.loads(run_tessera("info", xml, "--json").stdout)


@pytest.mark.parametrize("subsamp", [((1, 1, 1),), ((1, 1, 1), (1, 2, 2), (2, 4, 4))], ids=["one-level", "pyramid"])
def test_info_and_exact_reads(tmp_path, run_tessera, subsamp):
    h5 = tmp_path / "proj.h5"
    data = make_project(h5, subsamp)
    xml = tmp_path / "proj.xml"
    s = info(run_tessera, xml)
    assert s["format"] == "bdv"
    assert s["viewCount"] == 8
    assert s["tiles"] == [0, 1, 2, 3] and s["channels"] == [0, 1]
    assert s["elementTypes"] == ["uint16"] and s["rank"] == 3
    assert s["warnings"] == []
    for v in s["views"]:
        assert v["shape"] == list(SHAPE)
        assert v["voxelSizeUm"] == [2.0, 0.5, 0.5]
        assert len(v["levels"]) == len(subsamp)
        assert [lv["factors"] for lv in v["levels"]] == [list(map(float, f)) for f in subsamp]
        gy, gx = GRID[v["tile"]]
        origin = [row[3] for row in v["viewToWorld"]]
        np.testing.assert_allclose(origin, [0, gy * STEP_PX[0] * 0.5, gx * STEP_PX[1] * 0.5], atol=1e-9)
    # World bounds: voxel footprints from the first tile's corner to the last tile's far corner.
    np.testing.assert_allclose(s["worldLowerUm"], [-1.0, -0.25, -0.25])
    np.testing.assert_allclose(s["worldUpperUm"], [-1.0 + 12 * 2.0, -0.25 + (56 + 64) * 0.5, -0.25 + (70 + 80) * 0.5])
    # Overlap graph: 4 edges + 2 diagonals; x neighbours overlap by 80 - 70 = 10 voxels.
    pairs = {tuple(o["tiles"]): o["extentVoxels"] for o in s["overlaps"]}
    assert set(pairs) == {(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)}
    np.testing.assert_allclose(pairs[(0, 1)], [12, 64, 10])
    np.testing.assert_allclose(pairs[(0, 2)], [12, 8, 80])

    for c in range(2):
        for t in range(4):
            out = tmp_path / f"c{c}t{t}.npy"
            run_tessera("extract", xml, "--tile", t, "--channel", c, "--box", "2:11,5:60,3:77", "-o", out)
            region = np.load(out)
            assert region.dtype == np.uint16
            np.testing.assert_array_equal(region, data[(c, t)][2:11, 5:60, 3:77])
    if len(subsamp) > 1:
        with h5py.File(h5, "r") as f:
            for level in (1, 2):
                expected = f[f"t00000/s05/{level}/cells"][...].astype(np.uint16)  # setup 5 = channel 1, tile 1
                out = tmp_path / f"l{level}.npy"
                run_tessera("extract", xml, "--view", "t0/s5", "--level", level, "-o", out)
                np.testing.assert_array_equal(np.load(out), expected)


def test_added_transform_round_trip(tmp_path, run_tessera):
    make_project(tmp_path / "proj.h5", ((1, 1, 1),), compression=None)
    xml = tmp_path / "proj.xml"
    before = info(run_tessera, xml)
    out_dir = tmp_path / "refined"
    out_dir.mkdir()
    refined = out_dir / "refined.xml"
    run_tessera("shift-tiles", xml, "--shift", "1:0,1.5,-2", "--name", "Stitching Transform", "-o", refined)
    after = info(run_tessera, refined)  # the second read parses the npy2bdv XML with our added transform
    for a, b in zip(before["views"], after["views"]):
        delta = np.array([r[3] for r in b["viewToWorld"]]) - np.array([r[3] for r in a["viewToWorld"]])
        np.testing.assert_allclose(delta, [0, 1.5, -2] if a["tile"] == 1 else [0, 0, 0], atol=1e-9)
    # The new transform is first in tile 1's registrations (setups 1 and 5), in BDV units (0.5 µm) and x,y,z.
    root = ET.parse(refined).getroot()
    for reg in root.iter("ViewRegistration"):
        names = [vt.findtext("Name") for vt in reg.iter("ViewTransform")]
        if reg.get("setup") in ("1", "5"):
            assert names == ["Stitching Transform", "Translation to Regular Grid", "calibration"]
            affine = [float(v) for v in reg.find("ViewTransform").findtext("affine").split()]
            np.testing.assert_allclose(affine, [1, 0, 0, -4, 0, 1, 0, 3, 0, 0, 1, 0], atol=1e-9)
        else:
            assert names == ["Translation to Regular Grid", "calibration"]
    # The HDF5 path still resolves from the new directory, and pixels are unchanged.
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    run_tessera("extract", xml, "--view", "t0/s1", "-o", a)
    run_tessera("extract", refined, "--view", "t0/s1", "-o", b)
    np.testing.assert_array_equal(np.load(a), np.load(b))
    # Existing outputs are refused.
    r = run_tessera("shift-tiles", xml, "--shift", "1:0,1,1", "-o", refined, check=False)
    assert r.returncode != 0 and "exists" in r.stderr


def test_uncalibrated_project_warns(tmp_path, run_tessera):
    make_project(tmp_path / "proj.h5", ((1, 1, 1),), compression=None, calibration=(1, 1, 1))
    s = info(run_tessera, tmp_path / "proj.xml")
    assert any("voxelSize says 2.0" in w for w in s["warnings"])
    # Following the XML, as BigStitcher displays it: z planes 0.5 µm apart.
    np.testing.assert_allclose(s["views"][0]["viewToWorld"][0][0], 0.5)


def test_lzf_is_refused_with_a_clear_message(tmp_path, run_tessera):
    make_project(tmp_path / "proj.h5", ((1, 1, 1),), compression="lzf")
    r = run_tessera("extract", tmp_path / "proj.xml", "--tile", 0, "-o", tmp_path / "x.npy", check=False)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "LZF" in lines[0] and "proj.h5" in lines[0] and "h5repack" in lines[0]
    assert not (tmp_path / "x.npy").exists()


@pytest.mark.parametrize("blockdim", [(4, 32, 32), (4, 16, 16)], ids=["4x32x32", "4x16x16"])
def test_small_bdv_blocks_read_exactly(tmp_path, run_tessera, blockdim):
    """BigDataViewer's small blocks (npy2bdv blockdim is z,y,x): many chunks per view, read through
    Tessera's chunk index and coalesced reads, give exactly the stored voxels."""
    h5 = tmp_path / "proj.h5"
    data = make_project(h5, ((1, 1, 1),), blockdim=blockdim)
    with h5py.File(h5, "r") as f:
        assert f["t00000/s00/0/cells"].chunks == blockdim
        assert list(f["s00/subdivisions"][0]) == list(blockdim[::-1])
    xml = tmp_path / "proj.xml"
    for c, t in [(0, 0), (1, 3)]:
        whole = tmp_path / f"w{c}{t}.npy"
        run_tessera("extract", xml, "--tile", t, "--channel", c, "-o", whole)
        np.testing.assert_array_equal(np.load(whole), data[(c, t)])
        part = tmp_path / f"p{c}{t}.npy"
        run_tessera("extract", xml, "--tile", t, "--channel", c, "--box", "1:10,7:61,5:79", "-o", part)
        np.testing.assert_array_equal(np.load(part), data[(c, t)][1:10, 7:61, 5:79])
