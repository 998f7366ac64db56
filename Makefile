# Two commands on a fresh machine (Python 3 and make):
#   make lab    create .venv, install, open JupyterLab on notebooks/ (serving the repo)
#   make test   create .venv, install, run lint + the whole test suite
#   make package-check   the wheel as users install it, and the lowest versions
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: lab test lint format bench package-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,lab]"
	touch $(STAMP)

# Jupyter refuses to run as root unless told to (containers, CI machines).
ROOT_FLAG = $(if $(filter 0,$(shell id -u)),--allow-root,)

# Lab serves the repository and starts in notebooks/: the tutorials link to ../docs/*.md,
# which a server rooted in notebooks/ could not serve (404).
lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=. --FileContentsManager.preferred_dir=notebooks $(ROOT_FLAG)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# The wheel in a fresh venv per supported Python, and the tests on the lowest
# dependency versions (its own venvs: no $(STAMP) needed).
package-check:
	bash .ci/package-check

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
