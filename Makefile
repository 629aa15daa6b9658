# Two commands on a fresh machine: `make run` and `make test`. Each creates .venv and installs the project the first
# time (and again only when settings.ini or setup.py change).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR ?= runs/default

.PHONY: run lab test install export clean-nbs check-export check-clean nbtest docs-proc check-readme readme pytest hooks outputs bench docs preview quarto

PROFILE ?= default

run: $(STAMP)  ## the main job: every stage notebook run by papermill on the default profile (runs/default; resumes)
	$(BIN)/clinical-ml pipeline --config config/pipeline.yaml --profile $(PROFILE) --output $(RUN_DIR)

lab: $(STAMP)  ## JupyterLab on the notebooks, with the project's kernel (the one papermill runs) registered
	$(BIN)/python -c "from clinical_ml.pipeline import ensure_kernel; print('kernel:', ensure_kernel())"
	$(BIN)/jupyter lab --notebook-dir=nbs

install: $(STAMP)
$(STAMP): settings.ini setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

test: $(STAMP) check-export check-clean nbtest check-readme docs pytest  ## what CI runs
	@echo "make test: all checks passed"

export: $(STAMP)
	$(BIN)/nbdev_export

# The library must be exactly what the notebooks export.
check-export: $(STAMP)
	@tmp=$$(mktemp -d) && cp -r clinical_ml $$tmp/ && $(BIN)/nbdev_export && \
	  if ! diff -r -x __pycache__ $$tmp/clinical_ml clinical_ml; then \
	    echo "clinical_ml/ is not in sync with the notebooks: run 'make export' and commit both"; rm -rf $$tmp; exit 1; fi; \
	  rm -rf $$tmp; echo "library in sync with notebooks"

# Notebooks carry no execution counts or metadata noise.
check-clean: $(STAMP)
	@tmp=$$(mktemp -d) && cp nbs/*.ipynb $$tmp/ && $(BIN)/nbdev_clean && \
	  for f in nbs/*.ipynb; do cmp -s $$f $$tmp/$$(basename $$f) || { echo "$$f was not clean (nbdev_clean changed it): commit the cleaned notebook"; bad=1; }; done; \
	  rm -rf $$tmp; test -z "$$bad" && echo "notebooks clean"

nbtest: $(STAMP)
	$(BIN)/nbdev_test --n_workers 1 --timing

# nbdev's notebook processing for the docs site alone (make docs does it and renders the site).
docs-proc: $(STAMP)
	$(BIN)/python -c "from nbdev.serve import proc_nbs; print('processed notebooks into', proc_nbs(force=True))"

# The docs site: Quarto renders the processed notebooks into _docs/ (nbdev_docs), or serves them with live reload.
# The shared tools beside the checkout, or where a clone elsewhere finds them.
QUARTO_TOOLS ?= $(firstword $(wildcard ../shared/tools/quarto /work/shared/tools/quarto) ../shared/tools/quarto)
quarto:  ## Quarto on PATH; where it is missing, installed offline from $(QUARTO_TOOLS) when that folder is there (npm from Debian if needed)
	@command -v quarto > /dev/null || { test -f $(QUARTO_TOOLS)/install.sh && \
	  { command -v npm > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm > /dev/null; }; } && \
	  bash $(QUARTO_TOOLS)/install.sh $(QUARTO_TOOLS)/quarto-1.7.34-src.tar.gz; } || \
	  { echo "Quarto is not installed: 'pip install quarto-cli' or the installer from https://quarto.org/docs/get-started/ (1.5-1.7 work with nbdev 2.4)"; exit 1; }
	@quarto --version

docs: $(STAMP) quarto  ## render the docs site into _docs/ (README.md stays as .ci/readme.py writes it: nbdev_docs would rewrite it its own way; the .qmd pages run their code in this project's Python)
	@tmp=$$(mktemp) && cp README.md $$tmp && { time QUARTO_PYTHON=$(CURDIR)/$(BIN)/python $(BIN)/nbdev_docs; rc=$$?; cp $$tmp README.md; rm -f $$tmp; exit $$rc; }
	@echo "rendered $$(ls _docs/*.html | wc -l) pages into _docs/"

preview: $(STAMP) quarto  ## serve the docs site with live reload
	QUARTO_PYTHON=$(CURDIR)/$(BIN)/python $(BIN)/nbdev_preview

check-readme: $(STAMP)
	$(BIN)/python .ci/readme.py --check

readme: $(STAMP)
	$(BIN)/python .ci/readme.py

pytest: $(STAMP)
	$(BIN)/python -m pytest tests/ -q -p no:cacheprovider --durations=40; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 1; fi; exit $$rc

# Execute the notebooks in place so their outputs (the docs) are current, then clean them.
outputs: $(STAMP)
	cd nbs && for f in [0-9]*.ipynb index.ipynb; do ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace $$f || exit 1; done
	$(BIN)/nbdev_clean

hooks: $(STAMP)  ## git pre-commit hook: clean notebooks, refuse a commit whose library is out of sync
	@printf '#!/bin/sh\nset -e\n$(CURDIR)/$(BIN)/nbdev_clean\ngit add -u nbs\n$(CURDIR)/$(BIN)/nbdev_export\ngit diff --quiet -- clinical_ml || { echo "clinical_ml/ changed on export: git add clinical_ml and commit again"; exit 1; }\n' > .git/hooks/pre-commit
	@chmod +x .git/hooks/pre-commit && echo "installed .git/hooks/pre-commit"
