#!/usr/bin/env bash
# `make image`: build costgov's container image from the Dockerfile.
#
# With `docker build` where a Docker engine answers. Otherwise with buildah, rootless-style
# and self-contained: chroot isolation, vfs storage and every configuration file under
# $IMAGE_BUILD (default build/image), so nothing global is edited. When the registry base
# (python:3.11-slim) cannot be pulled, the bases are made from Debian bookworm packages with
# mmdebstrap (cached in $IMAGE_BUILD/bases). The host's CA bundle, when there is one, reaches
# the build stage as a build secret (pip behind a TLS-inspecting proxy), never the image.
#
# Environment: IMAGE (tag, default costgov:dev), IMAGE_BUILD, IMAGE_BASE=auto|registry|debian.
# Prints the tag; leaves an OCI archive at $IMAGE_BUILD/costgov.oci.tar (for `kind load
# image-archive`, `skopeo copy`, `podman load`).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-costgov:dev}
BUILD=$(mkdir -p "${IMAGE_BUILD:-build/image}" && cd "${IMAGE_BUILD:-build/image}" && pwd)
BASE_MODE=${IMAGE_BASE:-auto}
VERSION=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE=$(git remote get-url origin 2>/dev/null || true)
HOSTCA=${HOSTCA:-/etc/ssl/certs/ca-certificates.crt}
ARGS=(--build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" --build-arg "SOURCE=$SOURCE")
SECRET=()
[ -s "$HOSTCA" ] && SECRET=(--secret "id=hostca,src=$HOSTCA")
log() { echo "== $*" >&2; }

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  log "building $IMAGE with docker"
  DOCKER_BUILDKIT=1 docker build "${ARGS[@]}" "${SECRET[@]}" -t "$IMAGE" .
  docker save -o "$BUILD/costgov.oci.tar" "$IMAGE"  # Docker 25+ writes an OCI image layout
  echo "$IMAGE"
  exit 0
fi

# buildah builds; podman runs the image in `make image-test` (tests/e2e/test_image.py).
need=()
for tool in buildah podman runc mmdebstrap; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} (Debian packages)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" uidmap >/dev/null
fi

# Self-contained configuration: vfs storage (no overlay or fuse needed), runc (crun refuses
# hybrid cgroup layouts), ulimits within this machine's hard limits.
mkdir -p "$BUILD/storage" "$BUILD/run" "$BUILD/bases"
cat > "$BUILD/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$BUILD/storage"
runroot = "$BUILD/run"
EOF
cat > "$BUILD/registries.conf" <<'EOF'
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
EOF
cat > "$BUILD/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
echo '{"default": [{"type": "insecureAcceptAnything"}]}' > "$BUILD/policy.json"
export CONTAINERS_STORAGE_CONF="$BUILD/storage.conf" CONTAINERS_REGISTRIES_CONF="$BUILD/registries.conf"
export CONTAINERS_CONF="$BUILD/containers.conf" BUILDAH_ISOLATION=chroot
B=(buildah)
P=(--signature-policy "$BUILD/policy.json")

debian_base() {  # $1 name, $2 packages: a bookworm image of Essential packages + $2, cached
  local name=$1 packages=$2 root="$BUILD/bases/$1"
  if ! "${B[@]}" inspect --type image "localhost/costgov-base:$name" >/dev/null 2>&1; then
    if [ ! -d "$root" ]; then
      log "making the $name base from Debian bookworm packages ($packages)"
      rm -rf "$root.part"
      # Essential packages only (no apt), merged /usr without the usrmerge package (which
      # pulls in perl), no documentation.
      mmdebstrap --quiet --variant=essential --include="$packages" \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        bookworm "$root.part" http://deb.debian.org/debian >&2
      mv "$root.part" "$root"
    fi
    local ctr
    ctr=$("${B[@]}" from "${P[@]}" scratch)
    "${B[@]}" copy "$ctr" "$root/" / >/dev/null
    "${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --cmd /bin/sh "$ctr"
    "${B[@]}" commit --quiet "$ctr" "localhost/costgov-base:$name" >/dev/null
    "${B[@]}" rm "$ctr" >/dev/null
  fi
  echo "localhost/costgov-base:$name"
}

if [ "$BASE_MODE" != debian ] && timeout 60 "${B[@]}" pull "${P[@]}" --quiet docker.io/library/python:3.11-slim >/dev/null 2>&1; then
  BUILD_BASE=docker.io/library/python:3.11-slim RUNTIME_BASE=$BUILD_BASE
elif [ "$BASE_MODE" = registry ]; then
  log "cannot pull python:3.11-slim"; exit 1
else
  log "python:3.11-slim cannot be pulled here: Debian bookworm bases (mmdebstrap)"
  BUILD_BASE=$(debian_base build python3,python3-venv)
  RUNTIME_BASE=$(debian_base runtime python3,ca-certificates)
fi

log "building $IMAGE with buildah from $RUNTIME_BASE"
"${B[@]}" bud "${P[@]}" --quiet --isolation chroot --layers=false --pull-never \
  --build-arg "BUILD_BASE=$BUILD_BASE" --build-arg "RUNTIME_BASE=$RUNTIME_BASE" \
  "${ARGS[@]}" "${SECRET[@]}" -t "$IMAGE" . >/dev/null
rm -f "$BUILD/costgov.oci.tar"
"${B[@]}" push "${P[@]}" --quiet "$IMAGE" "oci-archive:$BUILD/costgov.oci.tar:$IMAGE" >/dev/null
echo "$IMAGE"
