# Sourced (not run) by the image scripts and tests: points buildah and podman at the project's
# own container configuration instead of the system's, written once into
# .cache/ops/containers/ (git-ignored):
#   containers.conf   runtime runc (crun refuses hybrid cgroup setups), host network, cgroupfs,
#                     file event logger (no systemd or journald needed)
#   storage.conf      vfs driver under .cache/ops/containers/storage (no overlay or fuse needed)
#   registries.conf   no unqualified-search registries: a bare name never goes to the network
#   policy.json       accepts images (local ones, and pulls where a registry is reachable)
# Exports CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF and
# CONTAINERS_POLICY (the path for --signature-policy).
_container_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONTAINERS_DIR="${CONTAINERS_DIR:-$_container_root/.cache/ops/containers}"
mkdir -p "$CONTAINERS_DIR/storage" "$CONTAINERS_DIR/runroot"
cat >"$CONTAINERS_DIR/containers.conf" <<CONF
[containers]
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
cat >"$CONTAINERS_DIR/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$CONTAINERS_DIR/storage"
runroot = "$CONTAINERS_DIR/runroot"
CONF
cat >"$CONTAINERS_DIR/registries.conf" <<CONF
unqualified-search-registries = []
short-name-mode = "disabled"
CONF
cat >"$CONTAINERS_DIR/policy.json" <<CONF
{"default": [{"type": "insecureAcceptAnything"}]}
CONF
export CONTAINERS_CONF="$CONTAINERS_DIR/containers.conf"
export CONTAINERS_STORAGE_CONF="$CONTAINERS_DIR/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$CONTAINERS_DIR/registries.conf"
export CONTAINERS_POLICY="$CONTAINERS_DIR/policy.json"
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-oci}"
