#!/usr/bin/env bash
# Installs Jaeger (all-in-one: OTLP receiver, in-memory storage, HTTP query API and UI) for the
# trace tests and `SMARTCITY_TRACING=jaeger make up`, built from the Go module proxy into the
# git-ignored cache .cache/ops/jaeger-<version>/jaeger; a second run only checks it is there.
#
# Jaeger's module has a `replace` directive, so `go install ...@version` is refused: a scratch
# module takes it as a tool (`go get -tool`), then builds that package. Cold: a few minutes.
#   JAEGER_VERSION  default v1.76.0
#   --print-path    print the binary's path and exit
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
JAEGER_VERSION="${JAEGER_VERSION:-v1.76.0}"
OPS_CACHE="${OPS_CACHE:-$root/.cache/ops}"
out="$OPS_CACHE/jaeger-$JAEGER_VERSION"
say() { printf '[install-jaeger] %s\n' "$*"; }
die() { printf '[install-jaeger] ERROR: %s\n' "$*" >&2; exit 1; }

if [ "${1:-}" = "--print-path" ]; then echo "$out/jaeger"; exit 0; fi
if [ -x "$out/jaeger" ]; then say "jaeger $JAEGER_VERSION cached in $out"; exit 0; fi
command -v go >/dev/null 2>&1 || die "no Go toolchain on PATH: Jaeger is built from the Go module proxy"
started=$(date +%s)
say "building jaeger $JAEGER_VERSION from the Go module proxy (cold: a few minutes)"
mkdir -p "$out/src"
cd "$out/src"
export GOFLAGS="-buildvcs=false -mod=mod" GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
[ -f go.mod ] || go mod init smartcity.local/jaeger-tool >/dev/null 2>&1
go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION"
go build -trimpath -ldflags=-s -o "$out/jaeger.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
mv "$out/jaeger.tmp" "$out/jaeger"
say "built in $(( $(date +%s) - started ))s: $(du -h "$out/jaeger" | cut -f1)"
