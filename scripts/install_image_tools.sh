#!/usr/bin/env bash
# Installs what `make images` needs where no Docker engine runs: Debian's buildah, runc (crun
# refuses this kind of machine's hybrid cgroups) and debootstrap (the base image when no
# registry serves python:3.11-slim). Idempotent and quick when they are there.
set -euo pipefail
say() { printf '[install-images] %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || missing+=(runc)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
if [ "${#missing[@]}" -eq 0 ]; then
  say "present: $(buildah --version), $(runc --version | head -n1), debootstrap"
  exit 0
fi
say "installing ${missing[*]} from Debian"
as_root apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=300 install -y -q \
  --no-install-recommends "${missing[@]}" >/dev/null
say "installed: $(buildah --version)"
