"""Readers users use open Tessera's outputs: tensorstore reads every level of v3, v3 sharded and v2
outputs bit-exactly (the same values zarr-python reads), and ome-zarr (the reader behind
napari-ome-zarr) finds the image with every level, scale and translation, without warnings; napari
itself, with napari-ome-zarr, opens the channels as multiscale layers with their scale, colours and
contrast, and draws them in a window on a private Xvfb display (napari's canvas needs OpenGL, which
Qt's offscreen platform lacks). The fused box starts away from the origin, so translations are not all zero."""
import contextlib
import logging
import warnings

import numpy as np
import pytest
import tensorstore as ts
import zarr
from ome_zarr.format import FormatV04, FormatV05
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader

from test_fuse import simulate

CASES = {
    "v3": ["--zarr-format", 3],
    "v3-sharded": ["--zarr-format", 3, "--chunks", "8,32,32", "--shard", "16,64,64"],
    "v2": ["--zarr-format", 2],
}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, run_tessera):
    root = tmp_path_factory.mktemp("readers")
    tiles = simulate(run_tessera, root / "acq", "--tile-shape", "16,60,70", "--grid", "1,2,2", "--channels", 2,
                     "--seed", 6, "--voxel-size", "2,0.5,0.5")
    out = {}
    for name, args in CASES.items():
        out[name] = root / f"{name}.ome.zarr"
        run_tessera("fuse", *tiles, "-o", out[name], "--pyramid", 3, "--bbox", "3:27,4.5:50,5:60", "--quiet",
                    *args)
    return out


def multiscale(path):
    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    return (attrs.get("ome", attrs))["multiscales"][0]


@pytest.mark.parametrize("name", CASES)
def test_tensorstore_reads_every_level_bit_exactly(outputs, name):
    path = outputs[name]
    for d in multiscale(path)["datasets"]:
        driver = "zarr" if name == "v2" else "zarr3"
        store = ts.open({"driver": driver, "kvstore": {"driver": "file", "path": str(path / d["path"])}}).result()
        expected = np.asarray(zarr.open_array(str(path / d["path"]), mode="r"))
        got = store.read().result()
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert np.array_equal(got, expected), (name, d["path"])
        assert expected.max() > 0


@pytest.mark.parametrize("name", CASES)
def test_ome_zarr_opens_every_level_with_its_scale(outputs, name, caplog):
    path = outputs[name]
    # The format the output declares (ome-zarr logs a "version mismatch" warning when it is asked
    # for 0.5 and finds 0.4, as it does for any 0.4 image).
    fmt = FormatV04() if name == "v2" else FormatV05()
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
        warnings.simplefilter("error")
        nodes = list(Reader(parse_url(str(path), fmt=fmt))())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert len(nodes) >= 1
    node = nodes[0]
    ms = multiscale(path)
    assert len(node.data) == len(ms["datasets"]) == 3
    transforms = node.metadata["coordinateTransformations"]
    for level, d in enumerate(ms["datasets"]):
        expected = np.asarray(zarr.open_array(str(path / d["path"]), mode="r"))
        assert np.array_equal(np.asarray(node.data[level]), expected)
        want = {t["type"]: t[t["type"]] for t in d["coordinateTransformations"]}
        got = {t["type"]: t[t["type"]] for t in transforms[level]}
        assert got == want, (name, level)
    assert [a["name"] for a in node.metadata["axes"]] == ["c", "z", "y", "x"]
    # Level 2: y and x halve twice (0.5 → 2 µm); z (2 µm) would be coarser than them if it halved.
    assert want["scale"][1:] == [2.0, 2.0, 2.0]


@contextlib.contextmanager
def napari_layers(outputs, name):
    """A shown napari viewer (on the test's X display) with output `name` opened by napari-ome-zarr,
    and its layers; the viewer is closed afterwards, whatever happened."""
    napari = pytest.importorskip("napari", reason="napari (Tests/Interop/requirements.txt) has no wheel here")
    pytest.importorskip("napari_ome_zarr", reason="napari-ome-zarr has no wheel here")
    viewer = napari.Viewer(show=True)
    try:
        yield viewer, viewer.open(str(outputs[name]), plugin="napari-ome-zarr")
    finally:
        viewer.close()


@pytest.mark.parametrize("name", CASES)
def test_napari_opens_the_channels_as_multiscale_layers(outputs, name, x_display):
    path = outputs[name]
    ms = multiscale(path)
    attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    omero = attrs.get("ome", attrs)["omero"]
    with napari_layers(outputs, name) as (viewer, layers):
        assert [layer.name.split(": ")[-1] for layer in layers] == ["channel 0", "channel 1"]
        levels = [np.asarray(zarr.open_array(str(path / d["path"]), mode="r")) for d in ms["datasets"]]
        for c, layer in enumerate(layers):
            assert layer.multiscale and len(layer.data) == len(levels) == 3
            for level, expected in enumerate(levels):
                assert np.array_equal(np.asarray(layer.data[level]), expected[c]), (name, c, level)
            assert list(layer.scale) == ms["datasets"][0]["coordinateTransformations"][0]["scale"][1:]
            window = omero["channels"][c]["window"]
            assert list(layer.contrast_limits) == [window["start"], window["end"]]
        assert [layer.colormap.name for layer in layers] == ["green", "magenta"]
        # Drawn: the canvas shows both channels (green and magenta add up to every colour plane).
        picture = np.asarray(viewer.screenshot(canvas_only=True, flash=False))
        assert picture.shape[2] >= 3
        assert all(picture[..., k].max() > 0 for k in range(3)), "napari drew a blank canvas"


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="napari-ome-zarr 0.10 drops OME-Zarr translations (its layers start at 0)")
def test_napari_places_the_layers_at_their_translation(outputs, x_display):
    want = multiscale(outputs["v3"])["datasets"][0]["coordinateTransformations"][1]["translation"][1:]
    if want == [0, 0, 0]:
        pytest.fail("the fused box starts at the origin: nothing to check")
    with napari_layers(outputs, "v3") as (_, layers):
        # Where the layer's first voxel lands in napari's world (translate, scale and affine).
        assert list(layers[0].data_to_world(np.zeros(3))) == want
