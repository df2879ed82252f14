# Sourced (not run) by the image scripts and tests: points buildah and podman at the project's
# own container configuration instead of the system's, written once into
# .cache/ops/containers/ (git-ignored):
#   containers.conf   runtime runc (crun refuses hybrid cgroup setups), host network, cgroupfs,
#                     file event logger (no systemd or journald needed)
#   storage.conf      overlay driver where the kernel lets us mount overlayfs (as root), else
#                     vfs (no overlay or fuse needed, but every layer is a full copy: several
#                     times slower); under .cache/ops/containers/storage-<driver>
#                     (CONTAINERS_STORAGE_DRIVER chooses)
#   registries.conf   no unqualified-search registries: a bare name never goes to the network
#   policy.json       accepts images (local ones, and pulls where a registry is reachable)
# Exports CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF and
# CONTAINERS_POLICY (the path for --signature-policy).
_container_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONTAINERS_DIR="${CONTAINERS_DIR:-$_container_root/.cache/ops/containers}"

_overlay_mounts() {  # whether this process may mount an overlayfs (root on a kernel that has it)
  [ "$(id -u)" -eq 0 ] && grep -qw overlay /proc/filesystems 2>/dev/null || return 1
  local probe ok=1
  probe="$(mktemp -d)"
  mkdir -p "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
  if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
      "$probe/merged" 2>/dev/null; then
    umount "$probe/merged" && ok=0
  fi
  rm -rf "$probe"
  return "$ok"
}
if [ -z "${CONTAINERS_STORAGE_DRIVER:-}" ]; then
  if _overlay_mounts; then CONTAINERS_STORAGE_DRIVER=overlay; else CONTAINERS_STORAGE_DRIVER=vfs; fi
fi
export CONTAINERS_STORAGE_DRIVER
_storage="$CONTAINERS_DIR/storage-$CONTAINERS_STORAGE_DRIVER"
mkdir -p "$_storage" "$CONTAINERS_DIR/runroot-$CONTAINERS_STORAGE_DRIVER"
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
driver = "$CONTAINERS_STORAGE_DRIVER"
graphroot = "$_storage"
runroot = "$CONTAINERS_DIR/runroot-$CONTAINERS_STORAGE_DRIVER"
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
