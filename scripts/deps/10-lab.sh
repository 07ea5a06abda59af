#!/usr/bin/env bash
# The SR-IOV lab's needs (lab/run-tests, lab/demo): QEMU >= 8 and a Debian kernel from
# bookworm-backports, busybox-static, iproute2, kmod, ethtool, pciutils, cpio, linux-headers and
# linux-source for the out-of-tree netdevsim, then netdevsim.ko and the initramfs. All of it is
# lab/run-lab.sh's own install step (`--prepare`: checks before it installs or builds, so a
# second run takes ~1 s). SKIP_LAB=1 (no lab run wanted) skips it.
set -euo pipefail
[ "${SKIP_LAB:-0}" != 1 ] || exit 0
exec "$(dirname "$0")/../../lab/run-lab.sh" --prepare
