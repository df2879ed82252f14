#!/usr/bin/env bash
# Builds the service images from the one Dockerfile, deploy/docker/Dockerfile, with the
# repository root as the build context. `make images` runs this; `make images PRINT=1` (or
# `--print`) only prints the build commands; `--print-engine` the engine it would use;
# `--only SERVICE` (repeatable) builds only those.
#
#   IMAGE_REPO        image name prefix (default smartcity: smartcity/<service>, as in deploy/k8s)
#   IMAGE_TAG         tag (default 0.1.0, the prod overlay's; the dev overlay uses `dev`)
#   CONTAINER_ENGINE  docker, podman or buildah (DOCKER is read too, for compatibility); default:
#                     docker when it reaches a daemon, else podman when installed, else buildah
#                     (installed from Debian's packages by scripts/install_image_tools.sh)
#   PYTHON_IMAGE      the base image; default python:3.11.13-slim-bookworm when a registry
#                     serves it, else a Debian bookworm base made here with debootstrap
#                     (scripts/build_base_image.sh, cached in .cache/ops/rootfs-*/)
#   UV_IMAGE          the image /uv is copied from; default ghcr.io/astral-sh/uv:<version>, else a
#                     local image holding the uv binary of the PyPI wheel of the same version
#
# buildah (and podman) run with the project's own configuration, never the system's
# (.cache/ops/containers/: vfs storage, runc, host network, no search registries, a policy
# accepting local images): see scripts/container_env.sh.
#
# The table below is the only place that pairs a service with its ports: the metrics port must
# match the service's ConfigMap, container port and Service in deploy/k8s (tests/ops checks it).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
IMAGE_REPO="${IMAGE_REPO:-smartcity}"
IMAGE_TAG="${IMAGE_TAG:-0.1.0}"
DOCKERFILE=deploy/docker/Dockerfile
REGISTRY_PYTHON_IMAGE=python:3.11.13-slim-bookworm
UV_VERSION="$(sed -n 's/^FROM ghcr.io\/astral-sh\/uv:\([0-9.]*\).*/\1/p; s/^ARG UV_IMAGE=ghcr.io\/astral-sh\/uv:\([0-9.]*\).*/\1/p' "$DOCKERFILE" | head -n1)"
REGISTRY_UV_IMAGE="ghcr.io/astral-sh/uv:$UV_VERSION"

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
print_engine=0
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --print) print_only=1 ;;
    --print-engine) print_engine=1 ;;
    --only) shift; only+=("${1:?--only needs a service name}") ;;
    *) die "unknown argument $1 (usage: $0 [--print | --print-engine] [--only SERVICE]...)" ;;
  esac
  shift
done

wanted() {  # whether a service is to be built (all when no --only was given)
  [ "${#only[@]}" -eq 0 ] && return 0
  local name; for name in "${only[@]}"; do [ "$name" = "$1" ] && return 0; done
  return 1
}

choose_engine() {
  local requested="${CONTAINER_ENGINE:-${DOCKER:-}}"
  if [ -n "$requested" ]; then echo "$requested"; return; fi
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then echo docker; return; fi
  if command -v podman >/dev/null 2>&1; then echo podman; return; fi
  echo buildah
}

ENGINE="$(choose_engine)"
ENGINE_NAME="$(basename "$ENGINE")"
if [ "$print_engine" -eq 1 ]; then echo "$ENGINE"; exit 0; fi

build_command() {  # the build command of one image row, as words on one line
  local service="$1" metrics_port="$2" extra_ports="$3"
  local cmd
  case "$ENGINE_NAME" in
    buildah) cmd="$ENGINE bud --layers --network host --signature-policy \$CONTAINERS_POLICY" ;;
    podman) cmd="$ENGINE build --network host" ;;
    *) cmd="$ENGINE build" ;;
  esac
  cmd+=" -f $DOCKERFILE --build-arg SERVICE=$service --build-arg METRICS_PORT=$metrics_port"
  [ "$extra_ports" = "-" ] || cmd+=" --build-arg EXTRA_PORTS=$extra_ports"
  [ -z "${PYTHON_IMAGE:-}" ] || cmd+=" --build-arg PYTHON_IMAGE=$PYTHON_IMAGE"
  [ -z "${UV_IMAGE:-}" ] || cmd+=" --build-arg UV_IMAGE=$UV_IMAGE"
  cmd+=" -t $IMAGE_REPO/$service:$IMAGE_TAG ."
  echo "$cmd"
}

print_commands() {
  local row service metrics_port extra_ports
  for row in "${IMAGES[@]}"; do
    read -r service metrics_port extra_ports <<<"$row"
    wanted "$service" && build_command "$service" "$metrics_port" "$extra_ports"
  done
  return 0
}

if [ "$print_only" -eq 1 ]; then
  print_commands
  exit 0
fi

if [ "$ENGINE_NAME" = buildah ] || [ "$ENGINE_NAME" = podman ]; then
  command -v "$ENGINE" >/dev/null 2>&1 || bash scripts/install_image_tools.sh
  # shellcheck source=scripts/container_env.sh
  source scripts/container_env.sh
else
  command -v "$ENGINE" >/dev/null 2>&1 \
    || die "'$ENGINE' is not installed: install Docker or podman, set CONTAINER_ENGINE=buildah, or run \`make images PRINT=1\` to print the build commands"
  "$ENGINE" info >/dev/null 2>&1 \
    || die "'$ENGINE' cannot reach a container engine (is the daemon running?); CONTAINER_ENGINE=buildah builds without one"
fi

image_present() {  # whether the engine's local storage holds the image
  case "$(basename "$ENGINE")" in
    buildah) "$ENGINE" inspect --type image "$1" >/dev/null 2>&1 ;;
    *) "$ENGINE" image inspect "$1" >/dev/null 2>&1 ;;
  esac
}

pull() {  # pulls an image from its registry; fails quickly when no registry is reachable
  case "$ENGINE_NAME" in
    buildah) timeout 60 "$ENGINE" pull --quiet --signature-policy "$CONTAINERS_POLICY" "docker.io/library/$1" >/dev/null 2>&1 \
               || timeout 60 "$ENGINE" pull --quiet --signature-policy "$CONTAINERS_POLICY" "$1" >/dev/null 2>&1 ;;
    *) timeout 120 "$ENGINE" pull --quiet "$1" >/dev/null 2>&1 ;;
  esac
}

# The base images: the registry's when it answers, else ones made here from package registries.
if [ -z "${PYTHON_IMAGE:-}" ]; then
  if image_present "$REGISTRY_PYTHON_IMAGE" || pull "$REGISTRY_PYTHON_IMAGE"; then
    say "base image $REGISTRY_PYTHON_IMAGE (from its registry)"
  else
    say "no registry serves $REGISTRY_PYTHON_IMAGE: using a debootstrap bookworm base"
    PYTHON_IMAGE="$(ENGINE="$ENGINE" bash scripts/build_base_image.sh python)"
    export PYTHON_IMAGE
  fi
fi
if [ -z "${UV_IMAGE:-}" ]; then
  if image_present "$REGISTRY_UV_IMAGE" || pull "$REGISTRY_UV_IMAGE"; then
    say "uv image $REGISTRY_UV_IMAGE (from its registry)"
  else
    say "no registry serves $REGISTRY_UV_IMAGE: using uv $UV_VERSION from its PyPI wheel"
    UV_IMAGE="$(ENGINE="$ENGINE" bash scripts/build_base_image.sh uv "$UV_VERSION")"
    export UV_IMAGE
  fi
fi

built=0
mapfile -t commands < <(print_commands)
for cmd in "${commands[@]}"; do
  started=$(date +%s)
  say "$cmd"
  eval "$cmd"
  built=$((built + 1))
  say "built in $(( $(date +%s) - started ))s"
done
if [ "$ENGINE_NAME" = buildah ]; then
  # buildah 1.28 leaves the working container of a stage without instructions (the uv stage).
  "$ENGINE" containers --format '{{.ContainerName}}' 2>/dev/null | grep '^smartcity-uv-working-container' \
    | xargs -r "$ENGINE" rm >/dev/null 2>&1 || true
fi
say "built $built images: $IMAGE_REPO/<service>:$IMAGE_TAG with $ENGINE_NAME"
"$ENGINE" images 2>/dev/null | grep -E "^(REPOSITORY|.*$IMAGE_REPO/)" || true
