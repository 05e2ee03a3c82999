#!/usr/bin/env bash
# The main job: start a local cluster and walk through the first steps of Ceph's
# "Block Devices and OpenStack" guide against it, printing each command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
dir="${SHOAL_DIR:-./shoal-cluster}"
step() { printf '\n$ %s\n' "$*"; "$@"; }
eval "$(shoal up --dir "$dir")"
echo "cluster config: $CEPH_CONF"
for pool in volumes images backups vms; do
  step ceph osd pool create "$pool" 128
done
step ceph osd pool ls detail
tmp=$(mktemp); trap 'rm -f "$tmp" "$tmp.out"' EXIT
echo "hello from the walkthrough" > "$tmp"
step rados -p images put greeting "$tmp"
step rados -p images get greeting "$tmp.out"
step cat "$tmp.out"
step rados -p images stat greeting
step ceph -s
echo
echo "The cluster keeps running; stop it with: shoal down --dir $dir"
