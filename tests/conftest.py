import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

@pytest.fixture
def cli():
    "Run the installed `clinical-ml` command in a real process; return the CompletedProcess."
    def run(*args, cwd=ROOT, timeout=600, env=None):
        return subprocess.run([str(BIN/'clinical-ml'), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})})
    return run
