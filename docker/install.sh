#!/bin/sh
# The two install steps of both images, into the virtual environment /opt/venv (run from the build context's root):
#   sh docker/install.sh deps ROLE      the ROLE's requirements (settings.ini), pinned by docker/constraints.txt
#   sh docker/install.sh project ROLE   clinical-ml itself (no dependencies: they are there), checked, then pruned
# ROLE is serve (the API: no training stack) or train (the pipeline, and the MLflow server).
set -eu
VENV=/opt/venv
case "${1:-}" in
deps)
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    python3 docker/requirements.py "${2:?usage: install.sh deps serve|train}" > /tmp/requirements.txt
    "$VENV/bin/python" -m pip install --quiet --requirement /tmp/requirements.txt --constraint docker/constraints.txt
    rm /tmp/requirements.txt ;;
project)
    "$VENV/bin/python" -m pip install --quiet --no-deps .
    "$VENV/bin/python" -m pip check
    "$VENV/bin/clinical-ml" --help > /dev/null
    # What no role runs: the libraries' own test suites and the installers (an image is rebuilt, not upgraded in place).
    find "$VENV/lib" -depth -type d \( -name tests -o -name test \) -path '*/site-packages/*' -exec rm -rf {} +
    "$VENV/bin/python" -m pip uninstall --quiet --yes pip setuptools wheel 2>/dev/null || true
    if [ "${2:-}" = train ]; then
        # The Jupyter kernel papermill runs the stage notebooks on, registered inside the environment now: at run time
        # the environment belongs to root and the pipeline runs as uid 10001.
        cd / && "$VENV/bin/python" -c "from clinical_ml.pipeline import ensure_kernel; ensure_kernel()"
    fi
    if [ "${2:-}" = serve ]; then
        # Bytecode only for what serving imports (the app, model loading, the boosters, the server): the rest of the
        # libraries' bytecode is ~60 MB the API never reads. A module missed here is compiled in memory when imported.
        find "$VENV" -depth -type d -name __pycache__ -exec rm -rf {} +
        cd / && "$VENV/bin/python" -c "import clinical_ml.cli, clinical_ml.serve, clinical_ml.registry, clinical_ml.estimators, \
mlflow.pyfunc, mlflow.artifacts, mlflow.tracking, mlflow.models, lightgbm, xgboost, imblearn.pipeline, \
sklearn.isotonic, sklearn.linear_model, uvicorn.workers, gunicorn.app.base, uvloop, httptools"
    fi ;;
*)
    echo "usage: install.sh deps serve|train | install.sh project serve|train" >&2; exit 2 ;;
esac
