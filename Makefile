# Parity — two commands do all set-up on a fresh machine with Python 3.11:
#   make demo   venv + install + synthetic South East region + results table
#   make test   venv + test dependencies (+ apt packages when run as root) + every test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# NHS Digital's mesh-sandbox pins its own FastAPI, so the MESH tests run it from a venv of its own
# (shared/docs/dependencies.md item 7); the tests start it on a free 127.0.0.1 port.
MESH_VENV  := .venv-mesh
MESH_STAMP := $(MESH_VENV)/.installed
# Debian packages the tests need (installed only when missing, and only as root); Java 17 runs the
# Spark tests (the `spark` extra, shared/docs/dependencies.md item 2).
APT_PACKAGES := postgresql postgresql-client chromium poppler-utils fonts-dejavu-core fonts-liberation \
                libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 openjdk-17-jre-headless
export PARITY_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
# The dashboard's port for `make demo` and `make serve` (make demo PORT=8080); REBUILD=1 builds the demo
# data again instead of reusing it.
PORT    ?= 8000
REBUILD ?=

.PHONY: demo demo-mesh serve test bench lint apt clean help

help:
	@echo "make demo [PORT=8000] [REBUILD=1] | make serve [PORT=8000] | make demo-mesh | make test | make bench | make lint | make clean"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel
	$(BIN)/pip install -q -e '.[dev,spark]'
	@touch $(STAMP)

$(MESH_STAMP):
	$(PYTHON) -m venv $(MESH_VENV)
	$(MESH_VENV)/bin/pip install -q 'mesh-sandbox==1.0.137'
	@touch $(MESH_STAMP)

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else echo "missing Debian packages:$$missing (run 'sudo make apt')"; fi; \
	fi

# The demo, with trust-to-GP messaging end to end: mesh-sandbox on 127.0.0.1:8700, a stand-in GP system
# for a practice not on Parity, and the MESH worker in the server; ends serving the dashboard on :8000.
demo: $(STAMP) $(MESH_STAMP)
	PORT=$(PORT) REBUILD=$(REBUILD) bash scripts/demo_mesh.sh

# Serve what is in parity-data/ now (no build, no MESH): after `make demo` or `parity load`.
serve: $(STAMP)
	@test -f parity-data/parity.duckdb || { echo "no parity-data/parity.duckdb yet: run 'make demo' first" >&2; exit 1; }
	$(BIN)/parity serve --database parity-data/parity.duckdb --port $(PORT)

demo-mesh: demo

test: apt $(STAMP) $(MESH_STAMP)
	$(BIN)/pytest

bench: $(STAMP) $(MESH_STAMP)
	$(BIN)/python benchmarks/run.py --keep --repeats 3
	$(BIN)/python benchmarks/web_load.py
	$(BIN)/python benchmarks/mesh_filing.py
	$(BIN)/python benchmarks/care.py
	$(BIN)/python benchmarks/patient_page.py --add-database benchmarks/work/bench.duckdb
	$(BIN)/python benchmarks/spark.py
	$(BIN)/python benchmarks/load.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts

clean:
	rm -rf $(VENV) $(MESH_VENV) parity-data .pytest_cache .ruff_cache
