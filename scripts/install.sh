#!/usr/bin/env bash
# Installs what the platform needs on a fresh machine: uv, the locked Python environment,
# and the Kafka jars. Idempotent and quick when everything is already there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
UV_VERSION="0.13.9"

say() { printf '[install] %s\n' "$*"; }

if ! command -v python3 >/dev/null 2>&1; then
  echo "python3 (3.11) is required: install it (e.g. apt-get install python3) and retry." >&2
  exit 1
fi
uv_cmd=(uv)
if ! command -v uv >/dev/null 2>&1 && ! python3 -m uv --version >/dev/null 2>&1; then
  say "installing uv ${UV_VERSION} from PyPI"
  python3 -m pip install --quiet "uv==${UV_VERSION}" || {
    echo "could not install uv with pip; install uv ${UV_VERSION} and retry." >&2; exit 1; }
fi
command -v uv >/dev/null 2>&1 || uv_cmd=(python3 -m uv)
say "syncing the Python environment from uv.lock"
# Bytecode compiled once here, as the images have it (UV_COMPILE_BYTECODE): where Python may not
# write its caches (PYTHONDONTWRITEBYTECODE, as in the images), every process would otherwise
# compile each module it imports from source, every start (a gateway and each of its rebuild
# workers: about a second of CPU each).
"${uv_cmd[@]}" sync --frozen --quiet --compile-bytecode
"${uv_cmd[@]}" run --frozen --quiet python -m compileall -q -j 0 libs services clients >/dev/null
say "fetching the Kafka broker jars (once)"
bash deploy/local/kafka.sh fetch
