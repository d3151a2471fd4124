#!/usr/bin/env bash
# `make demo` (and `make demo-mesh`): the demo with trust-to-GP messaging end to end. Builds the demo
# (`parity demo --no-serve`, which also queues two trust checks: one to the demo practice, on Parity, and
# one to a practice marked "not on Parity"), starts NHS Digital's mesh-sandbox (its own venv, .venv-mesh)
# on 127.0.0.1:8700 with full HMAC authentication, a stand-in GP system for the practice not on Parity
# (scripts/demo_gp_system.py: acknowledges GP Connect Send Document letters), then serves the dashboard
# on 127.0.0.1:8000 with the MESH worker. Within about half a minute the trust's Sent checks show one
# check filed (coded results) and one letter sent by Send Document, both acknowledged; sign in as
# `practice` for Results received. A second run reuses the built data (`parity demo` checks parity-data/demo.json)
# and serves in seconds; REBUILD=1 builds it again, PORT=8080 serves elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=parity-data
PORT=${PORT:-8000}
.venv/bin/parity demo --no-serve ${REBUILD:+--rebuild}
KEY=$(sed -n 's/^shared_key = "\(.*\)"/\1/p' "$DATA/mesh-sandbox.toml")
if curl -s -o /dev/null http://127.0.0.1:8700/health; then
  echo "something already listens on 127.0.0.1:8700; stop it first" >&2
  exit 1
fi
AUTH_MODE=full STORE_MODE=memory SHARED_KEY="$KEY" \
  .venv-mesh/bin/uvicorn mesh_sandbox.api:app --host 127.0.0.1 --port 8700 --workers 1 \
  > "$DATA/mesh-sandbox.log" 2>&1 &
SANDBOX=$!
trap 'kill $SANDBOX 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:8700/health && break; sleep 0.2; done
echo "mesh-sandbox on http://127.0.0.1:8700 (mailboxes X26ABC1-3)"
.venv/bin/python scripts/demo_gp_system.py "$DATA/mesh-sandbox.toml" --mailbox X26ABC3 \
  > "$DATA/demo-gp-system.log" 2>&1 &
GP_SYSTEM=$!
trap 'kill $SANDBOX $GP_SYSTEM 2>/dev/null || true' EXIT
echo "stand-in GP system of the practice not on Parity reading X26ABC3 (log: $DATA/demo-gp-system.log)"
PARITY_MESH_CONFIG="$DATA/mesh-sandbox.toml" PARITY_MESH_POLL_SECONDS=10 PARITY_SYNTHETIC=1 \
  .venv/bin/parity serve --database "$DATA/parity.duckdb" --port "$PORT"
