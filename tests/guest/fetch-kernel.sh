#!/bin/sh
# Fetch Debian's cloud kernel for test guests and unpack it (not install
# it): DIR/root/boot/vmlinuz-* and DIR/root/lib/modules/*.  Idempotent.
#
#   fetch-kernel.sh DIR
set -eu

dir=$1
sh "$(dirname "$0")/../support/fetch-debs.sh" "$dir" meta:linux-image-cloud-amd64
ls "$dir"/root/boot/vmlinuz-* >/dev/null
