#!/usr/bin/env bash
# Installs the system packages Strata's tests and demo need, only those
# that are missing, so that it is cheap to run again.
set -euo pipefail

packages=(
  python3-openstackclient python3-ironicclient
  etcd-server etcd-client
  ipmitool openipmi
  bc curl
  qemu-system-x86 qemu-utils ipxe-qemu ovmf iproute2
  busybox-static isc-dhcp-client dnsmasq-base kea-admin kea-dhcp4-server ndisc6
  tftp-hpa tftpd-hpa ipxe
  mtools syslinux syslinux-common syslinux-efi
  genisoimage gdisk fdisk util-linux skopeo
  tempest
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The Debian kernel for the deploy ramdisk and the lab's guests.
fetch_kernel() { "$(dirname "$0")/kernel.sh" >/dev/null; }
if [ ${#missing[@]} -eq 0 ]; then
  fetch_kernel
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
# Refresh the package lists once per machine (or when they are missing).
if [ ! -f /var/lib/apt/periodic/strata-updated ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
  $SUDO mkdir -p /var/lib/apt/periodic && $SUDO touch /var/lib/apt/periodic/strata-updated
fi
# Some of these packages ship servers (tftpd-hpa, kea-dhcp4-server): never
# let the install start them. Tests start the peers they need themselves,
# on loopback or in their own namespaces.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fetch_kernel
