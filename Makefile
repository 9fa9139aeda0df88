# Two commands do all the set-up: `make demo` and `make test`.
# The environment is a local .venv on Python 3.12 (pinned by .python-version through pyenv),
# installed from requirements.lock so a fresh machine gets the versions we tested.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint lock clean chromium

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 12), f"Python >= 3.12 needed, got {sys.version}"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/bayes-scaling demo --out demo_out

# the report screenshot test renders report.html in Debian's headless Chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) chromium
	$(BIN)/ruff check bayes_scaling tests benchmarks notebooks
	$(BIN)/python -m pytest -ra --durations=10

lint: $(STAMP)
	$(BIN)/ruff check bayes_scaling tests benchmarks notebooks
	$(BIN)/ruff format --check bayes_scaling tests benchmarks notebooks

lock:
	$(BIN)/pip freeze --exclude-editable | grep -v '^bayes-scaling' > requirements.lock

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache
