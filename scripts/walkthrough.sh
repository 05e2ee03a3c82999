#!/usr/bin/env bash
# The main job: start a local cluster and walk through the first steps of Ceph's
# "Block Devices and OpenStack" guide against it, printing each command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh openstack
dir="${SHOAL_DIR:-./shoal-cluster}"
step() { printf '\n$ %s\n' "$*"; "$@"; }
eval "$(shoal up --dir "$dir")"
echo "cluster config: $CEPH_CONF"
for pool in volumes images backups vms; do
  step ceph osd pool create "$pool" 128
done
for pool in volumes images backups vms; do
  step rbd pool init "$pool"
done
step ceph osd pool ls detail
# The guide's users, with the guide's caps; their keyrings go next to ceph.conf.
conf_dir=$(dirname "$CEPH_CONF")
step ceph auth get-or-create client.glance mon 'profile rbd' osd 'profile rbd pool=images' \
  -o "$conf_dir/ceph.client.glance.keyring"
step ceph auth get-or-create client.cinder mon 'profile rbd' \
  osd 'profile rbd pool=volumes, profile rbd pool=vms, profile rbd-read-only pool=images' \
  -o "$conf_dir/ceph.client.cinder.keyring"
step ceph auth get-or-create client.cinder-backup mon 'profile rbd' osd 'profile rbd pool=backups' \
  -o "$conf_dir/ceph.client.cinder-backup.keyring"
step ceph auth ls
tmp=$(mktemp); trap 'rm -f "$tmp" "$tmp.out"' EXIT
echo "hello from the walkthrough" > "$tmp"
step rados --id glance -p images put greeting "$tmp"
step rados --id glance -p images get greeting "$tmp.out"
step cat "$tmp.out"
step rados -p images stat greeting
echo; echo "# glance may not touch volumes (expected: Operation not permitted)"
step rados --id glance -p volumes put greeting "$tmp" || true
# What Glance, Cinder and Nova then do with RBD: an image, its protected snapshot, a volume
# cloned from it copy-on-write, a write to the volume, and the layering seen from both sides.
step rbd --id glance create --size 64M images/cirros
echo "pretend this is a disk image" > "$tmp"
step rbd --id glance import --no-progress "$tmp" images/cirros-raw
step rbd --id glance snap create images/cirros@snap
step rbd --id glance snap protect images/cirros@snap
step rbd --id cinder clone images/cirros@snap volumes/volume-1
step rbd --id cinder info volumes/volume-1
step rbd --id cinder bench --io-type write --io-size 4K --io-total 4M volumes/volume-1
step rbd --id cinder children images/cirros@snap
step rbd --id cinder ls -l volumes
step rbd du -p volumes
step ceph -s
# The OpenStack services themselves: the real glance_store, cinder and os-brick code with
# the guide's settings, then a hypervisor's attach over NBD.
step python3 scripts/openstack_demo.py
echo
echo "The cluster keeps running; stop it with: shoal down --dir $dir"
