#!/bin/sh
# Install clinical-ml from the project's own packaging, with its runtime dependencies pinned by docker/constraints.txt,
# into the virtual environment VENV. Both Dockerfiles run it; tests/test_docker.py replays it (and each image's entry
# command) in a fresh venv, since the build machines have no Docker engine.
#   sh docker/install.sh VENV [SRC]
set -eu
VENV=${1:?usage: install.sh VENV [SRC]}
SRC=${2:-.}
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet --constraint "$SRC/docker/constraints.txt" "$SRC"
"$VENV/bin/clinical-ml" --help > /dev/null
