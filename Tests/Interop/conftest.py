"""Shared fixtures: where the tessera binary is, and how to run it."""
import os
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
