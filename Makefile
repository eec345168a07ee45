# Every target sets itself up: a virtual environment in .venv with torch (TORCH_SPEC) and dfnet.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint format clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# Inpaints the shipped example with the bundled default model (docs/model-card.md); writes out/demo.png and,
# side by side, input / raw completion / alpha map / result as out/demo_merged.png.
demo: $(VENV)/.installed
	$(VENV)/bin/dfnet inpaint examples/photo.png examples/mask.png -o out/demo.png --merge --no-progress

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: lint
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
