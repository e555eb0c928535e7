#!/usr/bin/env bash
# Fetches a Debian kernel for the deploy ramdisk and the lab's guests, once:
# the newest linux-image-6.1.0-N-amd64 the package lists know, downloaded
# with `apt-get download` (never installed) and unpacked into
# $STRATA_KERNEL_CACHE/<release> (default /var/cache/strata/kernel).
# Prints the release directory. Idempotent: a cache that already holds a
# kernel is used as it is.
set -euo pipefail

cache=${STRATA_KERNEL_CACHE:-/var/cache/strata/kernel}
for d in "$cache"/*/; do
  case "$d" in *.partial/) continue ;; esac
  if compgen -G "$d/boot/vmlinuz-*" >/dev/null; then
    echo "${d%/}"
    exit 0
  fi
done

pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1)
if [ -z "$pkg" ]; then
  apt-get -o DPkg::Lock::Timeout=600 update -q >&2
  pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1)
fi
[ -n "$pkg" ] || { echo "kernel: no linux-image-6.1.0-*-amd64 package in the apt lists" >&2; exit 1; }
release=${pkg#linux-image-}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "kernel: fetching $pkg" >&2
(cd "$tmp" && apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
deb=$(ls "$tmp"/*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "kernel: apt-get download $pkg produced no package" >&2; exit 1; }
mkdir -p "$tmp/x"
dpkg-deb -x "$deb" "$tmp/x"
[ -f "$tmp/x/boot/vmlinuz-$release" ] || { echo "kernel: $pkg has no boot/vmlinuz-$release" >&2; exit 1; }
mkdir -p "$cache"
rm -rf "${cache:?}/$release.partial"
mv "$tmp/x" "$cache/$release.partial"
mv "$cache/$release.partial" "$cache/$release"
echo "$cache/$release"
