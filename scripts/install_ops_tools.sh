#!/usr/bin/env bash
# Installs the tools the operations checks (tests/ops) need. Idempotent and quick when they
# are already there:
#   promtool   from Debian's `prometheus` package (the Debian service is never started)
#   openssl    from Debian, when missing (certificates of the secured-broker test)
#   kustomize  pinned v5, into the git-ignored .local/bin/ (tests look there first)
#
# Order tried for kustomize: a Debian package `kustomize` when apt serves one; then
# `go install sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION` (Go module proxy) with
# GOBIN=.local/bin; last, when neither works, a `.local/bin/kustomize` wrapper around an
# installed kubectl's built-in `kubectl kustomize`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.7.1}"
BIN_DIR="$root/.local/bin"
APT_GET=(apt-get -o DPkg::Lock::Timeout=300 -y -q)

say() { printf '[install-ops] %s\n' "$*"; }
die() { printf '[install-ops] ERROR: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_candidate() {  # prints the candidate version apt would install, empty when not served
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}' | grep -v '(none)' || true
}

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
    apt_updated=1
  fi
}

install_promtool() {
  if command -v promtool >/dev/null 2>&1; then
    say "promtool present: $(promtool --version 2>&1 | head -n1)"
    return
  fi
  [ -n "$(apt_candidate prometheus)" ] || apt_update_once
  [ -n "$(apt_candidate prometheus)" ] || die "apt serves no 'prometheus' package: cannot install promtool"
  say "installing promtool from Debian's prometheus package"
  # Keep the package's own service from starting: nothing here depends on it, and a later
  # step runs its own Prometheus on another port. policy-rc.d exit 101 = "do not start".
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    added_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root "${APT_GET[@]}" install --no-install-recommends prometheus \
    >/dev/null || { [ "$added_policy" -eq 0 ] || as_root rm -f "$policy"; die "apt-get install prometheus failed"; }
  [ "$added_policy" -eq 0 ] || as_root rm -f "$policy"
  # Where an init system started it anyway, stop it and keep it from starting at boot.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
  command -v promtool >/dev/null 2>&1 || die "promtool still missing after installing prometheus"
  say "promtool installed: $(promtool --version 2>&1 | head -n1)"
}

kustomize_works() { [ -x "$BIN_DIR/kustomize" ] && "$BIN_DIR/kustomize" version >/dev/null 2>&1; }

install_kustomize() {
  mkdir -p "$BIN_DIR"
  if kustomize_works; then
    say "kustomize present: $("$BIN_DIR/kustomize" version 2>&1 | head -n1)"
    return
  fi
  [ -n "$(apt_candidate kustomize)" ] || apt_update_once
  if [ -n "$(apt_candidate kustomize)" ]; then
    say "installing kustomize from the Debian package"
    DEBIAN_FRONTEND=noninteractive as_root "${APT_GET[@]}" install kustomize >/dev/null \
      && ln -sf "$(command -v kustomize)" "$BIN_DIR/kustomize"
    if kustomize_works; then say "kustomize: Debian package worked"; return; fi
  else
    say "apt serves no kustomize package; trying the Go module proxy"
  fi
  if command -v go >/dev/null 2>&1; then
    say "go install sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION} (GOBIN=.local/bin)"
    if GOBIN="$BIN_DIR" GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
        go install "sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}"; then
      kustomize_works && { say "kustomize: go install worked ($("$BIN_DIR/kustomize" version))"; return; }
    fi
    say "go install of kustomize failed"
  else
    say "no Go toolchain on PATH"
  fi
  if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
    say "falling back to kubectl's built-in kustomize ($(kubectl version --client 2>/dev/null | tr '\n' ' '))"
    cat >"$BIN_DIR/kustomize" <<'EOF'
#!/usr/bin/env bash
# Stand-in written by scripts/install_ops_tools.sh: kubectl's built-in kustomize.
set -euo pipefail
case "${1:-}" in
  build) shift; exec kubectl kustomize "$@" ;;
  version) kubectl version --client 2>/dev/null | grep -i kustomize ;;
  *) echo "this kustomize stand-in only knows 'build' and 'version'" >&2; exit 2 ;;
esac
EOF
    chmod 755 "$BIN_DIR/kustomize"
    kustomize_works && return
  fi
  die "could not install kustomize (no Debian package, go install failed, no kubectl)"
}

# The secured-broker test (tests/foundation/test_secured_broker.py) makes its CA and broker
# certificate with the openssl command line.
install_openssl() {
  if command -v openssl >/dev/null 2>&1; then
    say "openssl present: $(openssl version)"
    return
  fi
  [ -n "$(apt_candidate openssl)" ] || apt_update_once
  say "installing Debian's openssl"
  as_root "${APT_GET[@]}" install --no-install-recommends openssl >/dev/null || die "apt-get install openssl failed"
}

install_promtool
install_kustomize
install_openssl
say "ops tools ready: promtool=$(command -v promtool) kustomize=$BIN_DIR/kustomize openssl=$(command -v openssl)"
