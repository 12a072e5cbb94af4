#!/usr/bin/env bash
# Builds the platform's images here, with no image registry, and writes them to one archive that
# `ctr images import` (or `docker load`) takes:
#   ghcr.io/finagent/{operator,api-server,ocr-worker}:$TAG   from the shipped Dockerfiles; the Rust
#       binaries are built on the host with the Dockerfiles' own cargo commands and passed in with
#       --build-arg BINARY_FROM=prebuilt (the build stage's `rust` image is on Docker Hub); the
#       runtime stages are the shipped ones;
#   ghcr.io/finagent/api-server:$TAG-unready   the same API failing its health checks (its Redis is
#       an address where nothing listens, so it does not start), for the rollback test;
#   localhost/finagent/{redis,mongodb,prometheus}:$NODE_KEY   the datastores (e2e/images);
#   localhost/finagent/{pause,node-services}:$NODE_KEY        the node's sandbox and services.
# The base `debian:bookworm-slim` is made with debootstrap from Debian's packages (cached).
#
# Usage: scripts/images.sh NODE_BIN_DIR OUTPUT_ARCHIVE [TAG, default e2e]
# Prints the image references it built, one per line.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_bin="$1"
output="$2"
tag="${3:-e2e}"
node_key="$(basename "$(dirname "$node_bin")")"
release=bookworm
base="docker.io/library/debian:$release-slim"
cache="${FINAGENT_IMAGES_CACHE:-$HOME/.cache/finagent/images}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
say() { echo "images: $*" >&2; }

# The machine's certificate authorities, for pip inside a build (PyPI may be reached through a
# proxy that signs with a local authority): mounted into each RUN step, never into an image.
mkdir -p "$work/host-ca"
cp /etc/ssl/certs/ca-certificates.crt "$work/host-ca/ca.crt"
printf '[global]\ncert = /run/host-ca/ca.crt\n' >"$work/host-ca/pip.conf"

# buildah on the machine's own network (apt and pip inside the build), with chroot isolation: no
# nested namespaces or cgroups are needed.
build() {
  local image="$1" dockerfile="$2" context="$3"
  shift 3
  buildah bud --quiet --network host --isolation chroot --layers \
    -v "$work/host-ca:/run/host-ca:ro" -v "$work/host-ca/pip.conf:/etc/pip.conf:ro" \
    --build-arg "VERSION=$tag" -f "$dockerfile" -t "$image" "$@" "$context" >/dev/null
  say "built $image"
  built+=("$image")
}

# 1. The base image, from Debian's packages (the slim image's sources, no package caches).
if ! podman image exists "$base"; then
  rootfs_tar="$cache/debian-$release-minbase.tar"
  if [ ! -s "$rootfs_tar" ]; then
    say "debootstrap $release (minbase)"
    mkdir -p "$cache"
    rootfs="$work/rootfs"
    debootstrap --variant=minbase "$release" "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
      { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    printf 'deb http://deb.debian.org/debian %s main\ndeb http://deb.debian.org/debian %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
      "$release" "$release" "$release" >"$rootfs/etc/apt/sources.list"
    tar -C "$rootfs" -cf "$rootfs_tar.partial" .
    mv "$rootfs_tar.partial" "$rootfs_tar"
  fi
  podman import --quiet "$rootfs_tar" "$base" >/dev/null
  say "imported $base"
fi

built=()

# 2. The Rust binaries, with the cargo commands of the Dockerfiles' build stages.
say "cargo build --release (operator, api-server without embedded OCR, ocr-worker)"
(
  cd "$root"
  cargo build --release --locked -p finagent-api-server --bin api-server --no-default-features
  mkdir -p "$work/api-server" && cp target/release/api-server "$work/api-server/"
  cargo build --release --locked -p finagent-ocr-worker --bin ocr-worker
  mkdir -p "$work/ocr-worker" && cp target/release/ocr-worker "$work/ocr-worker/"
  cargo build --release --locked -p finagent-operator --bin operator
  mkdir -p "$work/operator" && cp target/release/operator "$work/operator/"
) >&2

# 3. The platform's images, from the shipped Dockerfiles.
for component in operator api-server ocr-worker; do
  build "ghcr.io/finagent/$component:$tag" "$root/$component/Dockerfile" "$work/$component" \
    --build-arg BINARY_FROM=prebuilt --build-arg "REVISION=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
done
# An API that fails its health checks for real (e2e/images/api-server-unready).
build "ghcr.io/finagent/api-server:$tag-unready" "$root/e2e/images/api-server-unready/Dockerfile" \
  "$root/e2e/images/api-server-unready" --build-arg "TAG=$tag"

# 4. The datastores and the node's own images.
for name in redis prometheus; do
  build "localhost/finagent/$name:$node_key" "$root/e2e/images/$name/Dockerfile" "$root/e2e/images/$name"
done
mkdir -p "$work/mongodb" "$work/pause" "$work/node"
cp "$node_bin/ferretdb" "$root/e2e/images/mongodb/entrypoint.sh" "$work/mongodb/"
build "localhost/finagent/mongodb:$node_key" "$root/e2e/images/mongodb/Dockerfile" "$work/mongodb"
cp "$node_bin/pause" "$work/pause/"
build "localhost/finagent/pause:$node_key" "$root/e2e/images/pause/Dockerfile" "$work/pause"
cp "$node_bin/coredns" "$node_bin/traefik" "$node_bin/kube-network-policies" "$work/node/"
build "localhost/finagent/node-services:$node_key" "$root/e2e/images/node/Dockerfile" "$work/node"

# 5. One archive with every image, named as above.
rm -f "$output.partial"
podman save --quiet --multi-image-archive --format docker-archive -o "$output.partial" "${built[@]}"
mv "$output.partial" "$output"
# Each build leaves the previous build's images untagged. Those older than a day go; a day's
# worth stays, since the build's layer cache (the Debian packages installed in each image) is made
# of untagged images too, and pruning it all rebuilds every image from scratch (10 minutes more).
podman image prune --force --filter until=24h >/dev/null
say "${#built[@]} images in $output ($(du -h "$output" | cut -f1)), $(($(date +%s) - started)) s"
printf '%s\n' "${built[@]}"
