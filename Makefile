# unimse-hf: `make demo` runs the main job, `make test` the test suite, `make bench` the benchmarks.
# Each target first builds a virtual environment in .venv with everything it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install chromium demo test bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: this version comes from local disk; any other spec downloads a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,media]"
	touch $(STAMP)

install: $(STAMP)

# The Space demo's browser test drives Debian's chromium; install it when we can (root with apt).
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium not installed: the Space browser test will be skipped"

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP) chromium
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo_output
