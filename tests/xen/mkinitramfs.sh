#!/bin/sh
# Build the initramfs of the real-Xen suite's control domain: busybox, the
# Xen modules of Debian's kernel, Debian's xenhypfs, xl, xenstored and
# xen-init-dom0 with Debian's libraries (/deb), hypfs's xenhypfs,
# libxenhypfs, hypfs-exporter and hypfs-fuse (/ours), the shared libraries
# each needs from this machine (/lib), and the suite (tests/xen/dom0.sh)
# run by /init.
#
#   mkinitramfs.sh OUT ROOT BUILD_TOOLS...
#
# ROOT: Debian's packages unpacked (tests/support/fetch-debs.sh).
# BUILD_TOOLS: our xenhypfs, hypfs-exporter, hypfs-fuse; $LIBXENHYPFS_DIR
# holds our libxenhypfs.so.1.
set -eu

out=$1
root=$2
shift 2
: "${LIBXENHYPFS_DIR:?}"
here=$(cd "$(dirname "$0")" && pwd)
busybox=$(command -v busybox)
case $(ldd "$busybox" 2>&1 || true) in
*"=>"*) echo "mkinitramfs: $busybox is not static (apt-get install busybox-static)" >&2; exit 1 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/lib" "$work/lib64" "$work/deb/lib" "$work/ours/lib" \
         "$work/mods" "$work/dev" "$work/proc" "$work/sys" "$work/tmp" \
         "$work/etc" "$work/var" "$work/run" "$work/mnt" "$work/suite"
cp "$busybox" "$work/bin/busybox"
for a in $("$busybox" --list); do
    [ -e "$work/bin/$a" ] || ln -s busybox "$work/bin/$a"
done

# The libraries a program needs from this machine (Debian 12, as dom0's
# packages are): everything ldd finds outside ROOT and our build.
host_libs() {   # PROGRAM [LIBRARY_PATH]
    LD_LIBRARY_PATH=${2:-} ldd "$1" |
        awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r lib; do
        case "$lib" in "$root"/*|"$LIBXENHYPFS_DIR"/*) continue ;; esac
        dest=$work/lib/$(basename "$lib")
        [ -e "$dest" ] || cp "$(readlink -f "$lib")" "$dest"
    done
}

deblib=$root/usr/lib/x86_64-linux-gnu
cp -a "$deblib"/lib*.so* "$work/deb/lib/"
cp "$root/usr/sbin/xenhypfs" "$work/deb/"
for b in xl xenstored xen-init-dom0; do
    cp "$root/usr/lib/xen-4.17/bin/$b" "$work/deb/"
done
for b in "$work"/deb/xenhypfs "$work"/deb/xl "$work"/deb/xenstored \
         "$work"/deb/xen-init-dom0; do
    host_libs "$b" "$deblib"
done

cp -a "$LIBXENHYPFS_DIR"/libxenhypfs.so* "$work/ours/lib/"
for t in "$@"; do
    cp "$t" "$work/ours/"
    host_libs "$t" "$LIBXENHYPFS_DIR"
done
cp "$(readlink -f /lib64/ld-linux-x86-64.so.2)" "$work/lib/ld-linux-x86-64.so.2"
ln -sf ../lib/ld-linux-x86-64.so.2 "$work/lib64/ld-linux-x86-64.so.2"
command -v fusermount3 >/dev/null && cp "$(command -v fusermount3)" "$work/bin/"

mods=$(find "$root/lib/modules" -maxdepth 1 -mindepth 1 -type d | head -n1)
for m in drivers/xen/xen-privcmd drivers/xen/xenfs/xenfs drivers/xen/xen-evtchn \
         drivers/xen/xen-gntdev drivers/xen/xen-gntalloc fs/fuse/fuse; do
    cp "$mods/kernel/$m.ko"* "$work/mods/"
done
for f in "$work"/mods/*.ko.xz; do
    [ -e "$f" ] && xz -d "$f"
done

cp "$here/dom0.sh" "$work/suite/dom0.sh"
cat > "$work/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
for m in xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc fuse; do
    insmod /mods/$m.ko || echo "dom0: insmod $m failed"
done
mkdir -p /proc/xen
mount -t xenfs xenfs /proc/xen
stty -F /dev/ttyS1 115200 raw -echo
echo "dom0: up after $(cut -d' ' -f1 /proc/uptime) s, running the suite"
sh /suite/dom0.sh
echo "dom0: suite done after $(cut -d' ' -f1 /proc/uptime) s"
poweroff -f
INIT
chmod 755 "$work/init"
(cd "$work" && find . | "$busybox" cpio -o -H newc 2>/dev/null) > "$out"
