#!/bin/sh
# Fetch Debian's cloud kernel for test guests and unpack it (not install
# it): DIR/root/boot/vmlinuz-* and DIR/root/lib/modules/*.  Idempotent.
#
#   fetch-kernel.sh DIR
set -eu

dir=$1
if ls "$dir"/root/boot/vmlinuz-* >/dev/null 2>&1; then
    exit 0
fi
mkdir -p "$dir"
# The meta-package names the current kernel package.
kernel_pkg() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '/Depends: linux-image-/ { print $2; exit }'
}
pkg=$(kernel_pkg)
if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    pkg=$(kernel_pkg)
fi
if [ -z "$pkg" ]; then
    echo "fetch-kernel: apt knows no linux-image-cloud-amd64 (apt-get update?)" >&2
    exit 1
fi
(cd "$dir" && apt-get download -q "$pkg" >/dev/null)
rm -rf "$dir/root.new"
dpkg-deb -x "$dir"/"$pkg"_*.deb "$dir/root.new"
rm -f "$dir"/"$pkg"_*.deb
mv "$dir/root.new" "$dir/root"
ls "$dir"/root/boot/vmlinuz-* >/dev/null
