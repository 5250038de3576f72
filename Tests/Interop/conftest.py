"""Shared fixtures: where the tessera binary is, and how to run it."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tessera_bin() -> Path:
    path = Path(os.environ.get("TESSERA_BIN", ROOT / ".build" / "debug" / "tessera"))
    if not path.exists():
        pytest.fail(f"tessera binary not found at {path}; run `swift build` or set TESSERA_BIN")
    return path


@pytest.fixture(scope="session")
def run_tessera(tessera_bin):
    def run(*args, check=True):
        result = subprocess.run([str(tessera_bin), *map(str, args)], capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"tessera {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr}")
        return result

    return run


@pytest.fixture(scope="session")
def x_display():
    """An X display for napari's OpenGL canvas: the one in $DISPLAY, else a private Xvfb for the
    session (Qt's offscreen platform has no OpenGL, so napari cannot draw a layer on it)."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb): napari needs an X display with OpenGL")
    # -displayfd: Xvfb picks a free display number and writes it once it accepts connections.
    proc = subprocess.Popen([xvfb, "-displayfd", "1", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    number = proc.stdout.readline().strip()
    if not number:
        proc.kill()
        pytest.fail(f"Xvfb exited ({proc.wait()}) before it opened a display")
    display = f":{number}"
    old = os.environ.get("QT_QPA_PLATFORM")
    os.environ["DISPLAY"], os.environ["QT_QPA_PLATFORM"] = display, "xcb"
    try:
        yield display
    finally:
        os.environ.pop("DISPLAY", None)
        if old is None:
            os.environ.pop("QT_QPA_PLATFORM", None)
        else:
            os.environ["QT_QPA_PLATFORM"] = old
        proc.terminate()
        proc.wait(timeout=10)
