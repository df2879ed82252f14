#!/usr/bin/env bash
# Builds the service images from the one Dockerfile, deploy/docker/Dockerfile, with the
# repository root as the build context. `make images` runs this; `make images PRINT=1` (or
# `--print`) only prints the `docker build` commands, which needs no Docker at all.
#
#   IMAGE_REPO  image name prefix (default smartcity: smartcity/<service>, as in deploy/k8s)
#   IMAGE_TAG   tag (default 0.1.0, the prod overlay's; the dev overlay uses `dev`)
#   DOCKER      the docker client to run (default docker; podman works too)
#
# The table below is the only place that pairs a service with its ports: the metrics port must
# match the service's ConfigMap, container port and Service in deploy/k8s (tests/ops checks it).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
IMAGE_REPO="${IMAGE_REPO:-smartcity}"
IMAGE_TAG="${IMAGE_TAG:-0.1.0}"
DOCKER="${DOCKER:-docker}"
DOCKERFILE=deploy/docker/Dockerfile

# service           metrics port  other ports (EXPOSE)
IMAGES=(
  "wifi-telemetry   9101          -"
  "camera-health    9102          -"
  "citizen-requests 9103          -"
  "gateway          9104          50051"
  "open311          9105          8311"
)

say() { printf '[images] %s\n' "$*"; }
die() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }

print_only=0
case "${1:-}" in
  --print) print_only=1 ;;
  "") ;;
  *) die "unknown argument ${1} (usage: $0 [--print])" ;;
esac

commands=()
for row in "${IMAGES[@]}"; do
  read -r service metrics_port extra_ports <<<"$row"
  cmd="$DOCKER build -f $DOCKERFILE --build-arg SERVICE=$service --build-arg METRICS_PORT=$metrics_port"
  if [ "$extra_ports" != "-" ]; then
    cmd+=" --build-arg EXTRA_PORTS=$extra_ports"
  fi
  cmd+=" -t $IMAGE_REPO/$service:$IMAGE_TAG ."
  commands+=("$cmd")
done

if [ "$print_only" -eq 1 ]; then
  printf '%s\n' "${commands[@]}"
  exit 0
fi

command -v "$DOCKER" >/dev/null 2>&1 \
  || die "'$DOCKER' is not installed (or not on PATH): install Docker, set DOCKER=podman, or run \`make images PRINT=1\` to print the build commands"
"$DOCKER" info >/dev/null 2>&1 \
  || die "'$DOCKER' cannot reach a container engine (is the daemon running?); \`make images PRINT=1\` prints the build commands"

for cmd in "${commands[@]}"; do
  say "$cmd"
  $cmd
done
say "built ${#commands[@]} images: $IMAGE_REPO/<service>:$IMAGE_TAG"
