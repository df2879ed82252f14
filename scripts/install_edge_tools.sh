#!/usr/bin/env bash
# Installs the device-protocol tools the edge collectors' tests run against, from Debian, only
# what is missing (quick when everything is there):
#   snmpd snmp                 a real net-snmp agent and snmpget/snmpwalk (SNMP poller tests)
#   freeradius-utils           radclient, a RADIUS client nobody here wrote (accounting tests)
#   ffmpeg, gstreamer1.0-*     a real RTSP server (gst-rtsp-server through python3-gst) and
#   gir1.2-gst-rtsp-server-1.0 the encoders it streams with (frame-sampling tests)
#   python3-gst-1.0
# apt-get update runs at most once. The packages' own services (snmpd) are kept from starting:
# the tests start their own agents on free loopback ports.
set -euo pipefail
APT_GET=(apt-get -o DPkg::Lock::Timeout=300 -y -q)
PACKAGES=(snmpd snmp freeradius-utils ffmpeg gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0
          python3-gst-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-tools)

say() { printf '[install-edge] %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for package in "${PACKAGES[@]}"; do
  installed "$package" || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
  say "device-protocol tools present"
  exit 0
fi
say "installing from Debian: ${missing[*]}"
as_root apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
# policy-rc.d exit 101 = "do not start services": snmpd's own daemon would take UDP 161.
policy=/usr/sbin/policy-rc.d added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
  as_root chmod 755 "$policy"
  added_policy=1
fi
trap '[ "$added_policy" -eq 0 ] || as_root rm -f "$policy"' EXIT
DEBIAN_FRONTEND=noninteractive as_root "${APT_GET[@]}" install --no-install-recommends "${missing[@]}" >/dev/null
say "installed: ${missing[*]}"
