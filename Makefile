# Two entry points (see README): `make demo` and `make test`. Both create .venv themselves.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast venv bench clean browser faketime

# Find a Python >= 3.12 without trusting pyenv shims (they point at the global 3.11 here):
# $PYTHON if set, then python3.1x on PATH, then pyenv/uv/asdf install folders, then python3.
define FIND_PYTHON
for c in "$${PYTHON:-}" python3.12 python3.13 python3.14 \
         $$(ls -d "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V) \
         $$(ls -d "$$HOME"/.local/share/uv/python/cpython-3.1[2-9]*/bin/python3 2>/dev/null | sort -V) \
         $$(ls -d "$$HOME"/.asdf/installs/python/3.1[2-9]*/bin/python3 2>/dev/null | sort -V) \
         /usr/local/bin/python3 /usr/bin/python3 python3 python; do \
  [ -n "$$c" ] || continue; \
  p=$$(command -v "$$c" 2>/dev/null) || continue; \
  real=$$("$$p" -c 'import sys; print(sys.executable if sys.version_info >= (3, 12) else "")' 2>/dev/null) || continue; \
  if [ -n "$$real" ] && [ -x "$$real" ]; then echo "$$real"; exit 0; fi; \
done; exit 1
endef
export FIND_PYTHON

$(STAMP): pyproject.toml
	@py=$$(bash -c "$$FIND_PYTHON") || { \
	  echo "ERROR: no Python >= 3.12 found (tried \$$PYTHON, python3.1x on PATH, pyenv/uv/asdf installs)." >&2; \
	  echo "       Install Python 3.12+ or run: make PYTHON=/path/to/python3.12 $(MAKECMDGOALS)" >&2; exit 1; }; \
	echo "using $$py ($$($$py --version))"; \
	rm -rf $(VENV) && "$$py" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "installing the dependencies into $(VENV) (a few minutes the first time; pip shows its progress)"
	$(PY) -m pip install --progress-bar on -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/trade-executor demo

# Debian's Chromium for the dashboard's browser tests (Playwright cannot download its own browser
# here): installed with apt-get when missing and we are root; otherwise those tests skip with a reason.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (apt-get) for the dashboard's browser tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	      || echo "WARNING: chromium could not be installed: the browser tests will be skipped"; \
	  else echo "NOTE: no chromium (and not root with apt-get): the browser tests will be skipped"; fi; }

# libfaketime for the tests that run a live node on a placed, accelerated clock (the soak, the
# options cut-off): installed with apt-get when missing and we are root; otherwise they skip.
faketime:
	@dpkg -s libfaketime >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing libfaketime (apt-get) for the soak and options cut-off tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libfaketime faketime >/dev/null; } \
	      || echo "WARNING: libfaketime could not be installed: the soak tests will be skipped"; \
	  else echo "NOTE: no libfaketime (and not root with apt-get): the soak tests will be skipped"; fi; }

test: $(STAMP) browser faketime
	$(PY) -m pytest -q

test-fast: $(STAMP)  ## the inner loop: everything but whole runs (pytest -m "not slow"), on both cores
	$(PY) -m pytest -q -m "not slow" -n 2

bench: $(STAMP)
	$(VENV)/bin/trade-executor bench

clean:
	rm -rf $(VENV) data/catalog data/sample data/demo data/*.db backtests/out
