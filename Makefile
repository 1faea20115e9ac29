# gridman — the two commands of the README:
#   make run    set everything up and open the GUI on a copy of the sample database
#   make test   set everything up (system packages too, when root) and run the tests on
#               SQLite and on a throwaway PostgreSQL cluster
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
RUN_DB  := .run/gridman-demo.sqlite
# the suite on every core (pytest-xdist; each worker starts its own throwaway PostgreSQL)
PYTEST_ARGS ?= -n auto

.PHONY: run test system-deps venv bench sample-db templates screenshots lint clean package

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.stamp: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@

venv: $(VENV)/.stamp

system-deps:
	@bash scripts/install-system-deps.sh

# A fresh copy of the committed sample whenever the sample changes; the committed file is never opened.
$(RUN_DB): sample_db/gridman-demo.sqlite
	mkdir -p .run
	cp sample_db/gridman-demo.sqlite $@
	rm -f $@-wal $@-shm

run: system-deps venv $(RUN_DB)
	GRIDMAN_DB=$(RUN_DB) $(BIN)/gridman

test: system-deps venv
	QT_QPA_PLATFORM=offscreen GRIDMAN_REQUIRE_PG=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python bench/run_all.py

sample-db: venv
	rm -f sample_db/gridman-demo.sqlite
	$(BIN)/gridman sample --out sample_db/gridman-demo.sqlite --scale demo
	$(BIN)/python -c "import sqlite3; c = sqlite3.connect('sample_db/gridman-demo.sqlite'); c.execute('PRAGMA journal_mode=DELETE'); c.execute('VACUUM'); c.close()"

# the blank import templates under resources/templates, from the field catalogue
templates: venv
	$(BIN)/python -c "from gridman.core.services.export import write_all_templates; write_all_templates()"

screenshots: system-deps venv
	QT_QPA_PLATFORM=offscreen $(BIN)/python scripts/screenshots.py

# The frozen app (PyInstaller) and a .deb for Debian-based desktops, each smoke-tested here.
# The Windows installer script (packaging/windows/gridman.iss) is built with Inno Setup on Windows.
VERSION = $(shell $(BIN)/python -c "import gridman; print(gridman.__version__)" 2>/dev/null)
package: system-deps venv
	$(BIN)/python -m pip install -q -e '.[package]'
	$(BIN)/pyinstaller packaging/gridman.spec --noconfirm --log-level WARN --distpath build/dist --workpath build/pyi
	bash packaging/deb/build.sh build/dist/gridman build/gridman_$(VERSION)_amd64.deb $(VERSION)
	$(BIN)/python packaging/smoke.py build/dist/gridman --deb build/gridman_$(VERSION)_amd64.deb

lint: venv
	$(BIN)/ruff check gridman tests bench

clean:
	rm -rf .run build *.egg-info
