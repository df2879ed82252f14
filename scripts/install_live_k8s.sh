#!/usr/bin/env bash
# Installs what `make ops-live` needs to run a real Kubernetes API server on loopback:
#   kube-apiserver, kubectl  built from the Go module proxy (k8s.io/kubernetes, see below)
#   etcd                     from Debian's etcd-server package, unpacked (never installed)
#   prometheus-operator CRDs the published ServiceMonitor and PrometheusRule definitions of the
#                            github.com/prometheus-operator/prometheus-operator Go module
# into the git-ignored cache .cache/ops/<component>-<version>/, so a second run only checks
# that the binaries are there. Prints nothing but progress; `--print-dir` prints the folders.
#
# Why a wrapper module: `go install k8s.io/kubernetes/cmd/kube-apiserver@v1.x` is refused
# because k8s.io/kubernetes replaces its k8s.io/* dependencies with its own staging/ folders.
# A small module that requires k8s.io/kubernetes and replaces each staging module with its
# published v0.x twin builds the same binaries (cold: about 10 minutes on two cores).
#
#   KUBERNETES_VERSION           default v1.37.2 (the staging modules are then v0.37.2)
#   PROMETHEUS_OPERATOR_VERSION  default v0.93.0 (the release tests/ops/crd_schemas came from)
#   OPS_CACHE           default <repo>/.cache/ops
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.37.2}"
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.93.0}"
OPS_CACHE="${OPS_CACHE:-$root/.cache/ops}"
APT_GET=(apt-get -o DPkg::Lock::Timeout=300 -y -q)

say() { printf '[install-live-k8s] %s\n' "$*"; }
die() { printf '[install-live-k8s] ERROR: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

staging_version() { echo "v0.${KUBERNETES_VERSION#v1.}"; }

# The staging modules of k8s.io/kubernetes (its staging/src/k8s.io/ folders).
STAGING_MODULES=(
  api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice
  externaljwt kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl
  kubelet metrics mount-utils pod-security-admission sample-apiserver sample-cli-plugin
  sample-controller streaming
)

kubernetes_dir() { echo "$OPS_CACHE/kubernetes-$KUBERNETES_VERSION"; }

build_kubernetes() {
  local out; out="$(kubernetes_dir)"
  if [ -x "$out/kube-apiserver" ] && [ -x "$out/kubectl" ]; then
    say "kube-apiserver and kubectl $KUBERNETES_VERSION cached in $out"
    return
  fi
  command -v go >/dev/null 2>&1 || die "no Go toolchain on PATH: kube-apiserver is built from the Go module proxy"
  local src="$out/src" started; started=$(date +%s)
  mkdir -p "$src"
  say "building kube-apiserver and kubectl $KUBERNETES_VERSION from the Go module proxy (cold: ~10 min)"
  {
    echo "module smartcity.local/kubernetes-tools"
    echo
    echo "go 1.25"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    local module
    for module in "${STAGING_MODULES[@]}"; do
      echo "	k8s.io/$module => k8s.io/$module $(staging_version)"
    done
    echo ")"
  } >"$src/go.mod"
  cat >"$src/tools.go" <<'GO'
//go:build tools

// Package tools pins the commands this module builds.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (
    cd "$src"
    export GOFLAGS="-buildvcs=false -mod=mod" GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
    go mod tidy
    go build -trimpath -ldflags=-s -o "$out/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
    go build -trimpath -ldflags=-s -o "$out/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl
  )
  mv "$out/kube-apiserver.tmp" "$out/kube-apiserver"
  mv "$out/kubectl.tmp" "$out/kubectl"
  say "built in $(( $(date +%s) - started ))s: $(du -h "$out/kube-apiserver" | cut -f1) kube-apiserver, $(du -h "$out/kubectl" | cut -f1) kubectl"
}

apt_version() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}' | grep -v '(none)' || true; }

install_etcd() {
  local version
  version="$(apt_version etcd-server)"
  if [ -z "$version" ]; then
    as_root apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
    version="$(apt_version etcd-server)"
  fi
  if [ -z "$version" ]; then
    # No apt index (or no package): a cached etcd of any version still serves.
    local cached; cached="$(ls -d "$OPS_CACHE"/etcd-*/ 2>/dev/null | tail -n1 || true)"
    [ -n "$cached" ] && [ -x "$cached/etcd" ] && { say "apt serves no etcd-server; using cached $cached"; return; }
    die "apt serves no etcd-server package"
  fi
  local out="$OPS_CACHE/etcd-${version//[:~]/_}"
  if [ -x "$out/etcd" ]; then say "etcd $version cached in $out"; return; fi
  say "unpacking Debian's etcd-server $version into $out"
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download -q "etcd-server=$version" >/dev/null) || die "apt-get download etcd-server failed"
  dpkg -x "$tmp"/etcd-server_*.deb "$tmp/root"
  mkdir -p "$out"
  cp "$tmp/root/usr/bin/etcd" "$out/etcd.tmp" && mv "$out/etcd.tmp" "$out/etcd"
  rm -rf "$tmp"
}

install_prometheus_operator_crds() {
  local out="$OPS_CACHE/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION/crds" name dir
  local wanted=(monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_prometheusrules.yaml)
  if [ -f "$out/${wanted[0]}" ] && [ -f "$out/${wanted[1]}" ]; then
    say "prometheus-operator $PROMETHEUS_OPERATOR_VERSION CRDs cached in $out"
    return
  fi
  command -v go >/dev/null 2>&1 || die "no Go toolchain on PATH: the prometheus-operator CRDs come from its Go module"
  say "downloading the Go module github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION for its CRDs"
  dir="$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  mkdir -p "$out"
  for name in "${wanted[@]}"; do
    cp "$dir/example/prometheus-operator-crd/$name" "$out/$name.tmp" && mv "$out/$name.tmp" "$out/$name"
  done
}

case "${1:-}" in
  --print-dir) echo "$(kubernetes_dir)"; ls -d "$OPS_CACHE"/etcd-*/ 2>/dev/null | tail -n1; exit 0 ;;
  "") ;;
  *) die "unknown argument $1 (usage: $0 [--print-dir])" ;;
esac
mkdir -p "$OPS_CACHE"
install_etcd
install_prometheus_operator_crds
build_kubernetes
