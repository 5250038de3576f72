"""Shared fixtures: where the tessera binary is, and how to run it."""
import ctypes
import os
import select
import shutil
import signal
import subprocess
import sys
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


def _die_with_parent():
    """In a child before exec: SIGTERM when the parent exits (Linux `prctl(PR_SET_PDEATHSIG)`)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


@pytest.fixture(scope="module")
def x_display():
    """An X display for napari's OpenGL canvas (Qt's offscreen platform has no OpenGL, so napari
    cannot draw a layer on it): a private Xvfb for the module, so that shown windows never reach the
    developer's screen; the one in $DISPLAY only where Xvfb is not installed. Qt is pointed at it
    (`QT_QPA_PLATFORM=xcb`) and the environment restored afterwards."""
    saved = {k: os.environ.get(k) for k in ("DISPLAY", "QT_QPA_PLATFORM")}
    proc = None
    xvfb = shutil.which("Xvfb")
    if xvfb is not None:
        # -displayfd: Xvfb picks a free display number and writes it once it accepts connections.
        # It ends with this process at the latest (PR_SET_PDEATHSIG): see the teardown below.
        proc = subprocess.Popen([xvfb, "-displayfd", "1", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                preexec_fn=_die_with_parent)
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        number = proc.stdout.readline().strip() if ready else ""
        if not number:
            proc.kill()
            pytest.fail(f"Xvfb did not open a display within 30 s (exit status {proc.wait()})")
        display = f":{number}"
    elif saved["DISPLAY"]:
        display = saved["DISPLAY"]
    else:
        pytest.skip("Xvfb is not installed (apt-get install xvfb): napari needs an X display with OpenGL")
    os.environ["DISPLAY"], os.environ["QT_QPA_PLATFORM"] = display, "xcb"
    try:
        yield display
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        # Qt keeps its X connection until the process exits, and Xlib ends a process whose server
        # goes away (exit status 1): once Qt is loaded, the server outlives the tests and dies with
        # this process.
        if proc is not None and "PyQt5.QtWidgets" not in sys.modules:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
