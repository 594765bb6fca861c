#!/bin/sh
# Builds the container base image `localhost/baffle-base` from Debian packages, for machines that reach the
# Debian and npm registries but no container registry:
#
#   sudo deploy/base.sh                       # debootstrap trixie + nodejs + npm, then podman import
#   podman build --build-arg BASE=localhost/baffle-base -t localhost/baffle .
#
# Debian trixie's `nodejs` is Node 20 (baffle needs ^20.19 or >= 22.12). `npm` is in the base because the
# Containerfile's build stage runs `npm ci` in it. Nothing of the host goes into the image: debootstrap
# writes a fresh root file system from the mirror, and the apt lists and caches are removed before import.
#
# Environment (all optional):
#   SUITE     Debian suite (default trixie)
#   MIRROR    Debian mirror (default http://deb.debian.org/debian)
#   PACKAGES  packages installed with apt-get in the new root, space-separated (default: nodejs npm ca-certificates)
#   TAG       image name (default localhost/baffle-base)
#   ENGINE    podman or docker (default podman)
set -eu

SUITE=${SUITE:-trixie}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PACKAGES=${PACKAGES:-nodejs npm ca-certificates}
TAG=${TAG:-localhost/baffle-base}
ENGINE=${ENGINE:-podman}

if [ "$(id -u)" -ne 0 ]; then
  echo "base.sh: debootstrap needs root (run it with sudo)" >&2
  exit 2
fi
for tool in debootstrap "$ENGINE" tar; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "base.sh: $tool is not installed (Debian: apt-get install debootstrap $ENGINE)" >&2
    exit 2
  }
done

ROOT=$(mktemp -d "${TMPDIR:-/var/tmp}/baffle-base.XXXXXX")
cleanup() {
  mountpoint -q "$ROOT/proc" 2>/dev/null && umount "$ROOT/proc"
  rm -rf "$ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
echo "base.sh: debootstrap --variant=minbase $SUITE ($MIRROR)"
debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR"
t1=$(date +%s)
# apt-get resolves what debootstrap --include cannot (npm's many dependencies).
echo "base.sh: apt-get install $PACKAGES"
mount -t proc proc "$ROOT/proc"
chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null && apt-get clean"
umount "$ROOT/proc"

# What an image does not need: package lists and caches, documentation, man pages, logs.
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/* "$ROOT"/var/cache/debconf/*-old \
  "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/var/log/* \
  "$ROOT"/tmp/* "$ROOT"/var/tmp/*
# debootstrap copies the host's resolv.conf, hosts and hostname; the container engine provides them at run time.
: > "$ROOT"/etc/resolv.conf
: > "$ROOT"/etc/hosts
rm -f "$ROOT"/etc/hostname
node_version=$(chroot "$ROOT" node --version)

t2=$(date +%s)
echo "base.sh: importing as $TAG (node $node_version)"
tar -C "$ROOT" --numeric-owner -c . | "$ENGINE" import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["node"]' \
  - "$TAG" >/dev/null
t3=$(date +%s)
echo "base.sh: $TAG ready: node $node_version; debootstrap $((t1 - t0)) s, packages $((t2 - t1)) s, import $((t3 - t2)) s"
"$ENGINE" image ls "$TAG"
