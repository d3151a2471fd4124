#!/usr/bin/env bash
# `make demo-mesh`: the demo with trust-to-GP messaging switched on. Starts NHS Digital's mesh-sandbox
# (its own venv, .venv-mesh) on 127.0.0.1:8700 with full HMAC authentication, then serves the demo with
# PARITY_MESH_CONFIG pointing at the sandbox file `parity demo` wrote. Sign in as `trust`, record a check
# for a patient of the demo practice, and within about ten seconds it is filed at the practice
# (sign in as `practice`: Results received, and the letter on the patient page).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=parity-data
if [ ! -f "$DATA/parity.duckdb" ] || [ ! -f "$DATA/mesh-sandbox.toml" ]; then
  .venv/bin/parity demo --no-serve
fi
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
PARITY_MESH_CONFIG="$DATA/mesh-sandbox.toml" PARITY_MESH_POLL_SECONDS=10 PARITY_SYNTHETIC=1 \
  .venv/bin/parity serve --database "$DATA/parity.duckdb"
