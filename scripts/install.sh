#!/usr/bin/env bash
# Installs what Shoal needs on a fresh Debian machine (run as root): Python packages in
# editable mode; system packages only for extras (apt is skipped when nothing is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Shoal needs Python 3.11 or newer" >&2; exit 1
fi
python3 -m pip install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}"

# System packages per extra: the NBD conformance tests drive the gateway with real clients
# (qemu-img/qemu-io from qemu-utils, nbdinfo/nbdcopy from libnbd-bin, fio), checked as
# "command:package" pairs; the boot test's packages are listed in tests/nbd/boot-packages.txt.
apt_packages=()
case ",$extras," in
  *,openstack,*)
    # cinder inspects images with qemu-img; the walkthrough converts QCOW2 and maps over NBD
    for pair in qemu-img:qemu-utils nbdinfo:libnbd-bin; do
      command -v "${pair%%:*}" >/dev/null 2>&1 || apt_packages+=("${pair#*:}")
    done
    ;;&
  *,test,*)
    for pair in qemu-img:qemu-utils qemu-io:qemu-utils nbdinfo:libnbd-bin nbdcopy:libnbd-bin fio:fio; do
      command -v "${pair%%:*}" >/dev/null 2>&1 || apt_packages+=("${pair#*:}")
    done
    # the boot-from-volume test builds a bootable disk from these and boots it in qemu
    while read -r pkg; do
      dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || apt_packages+=("$pkg")
    done < tests/nbd/boot-packages.txt
    ;;
esac
if [ "${#apt_packages[@]}" -gt 0 ]; then
  mapfile -t apt_packages < <(printf '%s\n' "${apt_packages[@]}" | sort -u)
  echo "installing system packages: ${apt_packages[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
