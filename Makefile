# energylab: the two commands of the README (`make dashboard`, `make test`) do all set-up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
PORT   ?= 8501

.PHONY: install dashboard test lab bench clean system-deps notebooks notebooks-html

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# One install of everything the README's commands use; redone when pyproject changes.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -e ".[test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (energylab)"
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the browser tests and the notebooks' static figures (kaleido drives it; never
# `playwright install` or `kaleido.get_chrome()`: they download browsers), and Debian's MathJax 2.7 for
# the offline HTML export of the notebooks.
system-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -f /usr/share/javascript/mathjax/MathJax.js ]; then \
		if command -v apt-get >/dev/null; then \
			SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
			$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q \
				chromium chromium-driver libjs-mathjax fonts-mathjax; \
		else echo "Install Chromium and MathJax 2.7 (packages chromium, libjs-mathjax) for the browser tests"; exit 1; fi; \
	fi

# `energylab dashboard` passes the project's Streamlit settings itself (loopback, no usage
# statistics, no Deploy button), from any folder; ADDRESS=0.0.0.0 opens it to the network.
dashboard: install
	$(VENV)/bin/energylab dashboard --port $(PORT) $(if $(ADDRESS),--address $(ADDRESS))

test: install system-deps
	$(PY) -m pytest

# Re-execute every chapter in full mode, headless, saving the outputs to commit (prints each run time).
# One chapter: `make notebooks NB=03`; the solutions: `make notebooks NB=solutions/`.
notebooks: install system-deps
	OMP_NUM_THREADS=1 $(PY) notebooks/build.py run $(NB)

# Offline HTML of the notebooks (MathJax copied alongside, figures as PNG) in build/notebooks-html/.
notebooks-html: install system-deps
	$(PY) notebooks/build.py html $(NB)

lab: install
	$(VENV)/bin/jupyter lab --notebook-dir notebooks --ServerApp.ip 127.0.0.1

bench: install
	bash bench/setup_others.sh
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
