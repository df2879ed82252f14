#!/usr/bin/env bash
# Generates the Python code of the contract (protos/smartcity/v1) into libs/smartcity/v1.
#   scripts/gen_protos.sh          regenerate in place
#   scripts/gen_protos.sh --check  fail when the committed code differs from a fresh generation
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

generate() {
  local out="$1"
  mkdir -p "$out/smartcity/v1"
  uv run --frozen python -m grpc_tools.protoc -I protos \
    --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
    protos/smartcity/v1/*.proto
  : > "$out/smartcity/v1/__init__.py"
}

if [ "${1:-}" = "--check" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  generate "$tmp"
  if ! diff -r -q -x __pycache__ "$tmp/smartcity/v1" libs/smartcity/v1 >/dev/null; then
    diff -r -q -x __pycache__ "$tmp/smartcity/v1" libs/smartcity/v1 || true
    echo "Generated protobuf code is stale: run 'make protos' and commit libs/smartcity/v1." >&2
    exit 1
  fi
  echo "Generated protobuf code is up to date."
else
  rm -rf libs/smartcity/v1
  generate libs
  echo "Generated libs/smartcity/v1 from protos/smartcity/v1."
fi
