#!/bin/sh
# Build a guest's initramfs: busybox, hypfs's guest tools and the shared
# libraries they need, the virtio-serial and FUSE modules of KERNEL_ROOT
# (an unpacked linux-image package), and an /init that brings the port up
# and then runs a shell on the serial console, for the test to drive.
#
#   mkinitramfs.sh OUT.cpio[.gz] KERNEL_ROOT TOOL...
set -eu

out=$1
kroot=$2
shift 2
busybox=$(command -v busybox)
case $(ldd "$busybox" 2>&1 || true) in
*"=>"*) echo "mkinitramfs: $busybox is not static (apt-get install busybox-static)" >&2; exit 1 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/lib/modules" "$work/dev" "$work/proc" "$work/sys" \
         "$work/tmp" "$work/mnt/hypfs" "$work/etc"
cp "$busybox" "$work/bin/busybox"
for a in sh mount umount insmod cat ls echo stty sleep grep kill mkdir rm \
         head tail wc test tr sed true false timeout ps cut printf killall \
         xargs; do
    ln -s busybox "$work/bin/$a"
done

# The tools, their libraries (by the paths the loader finds), the loader.
for t in "$@"; do
    cp "$t" "$work/bin/"
    ldd "$t" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r lib; do
        real=$(readlink -f "$lib")
        dest=$work/lib/$(basename "$lib")
        [ -e "$dest" ] || cp "$real" "$dest"
    done
done
mkdir -p "$work/lib64"
ln -sf ../lib/ld-linux-x86-64.so.2 "$work/lib64/ld-linux-x86-64.so.2"
echo "/lib" > "$work/etc/ld.so.conf"

mods=$(find "$kroot/lib/modules" -maxdepth 1 -mindepth 1 -type d | head -n1)
for m in virtio/virtio_ring virtio/virtio virtio/virtio_pci_modern_dev \
         virtio/virtio_pci_legacy_dev virtio/virtio_pci char/virtio_console; do
    cp "$mods/kernel/drivers/$m.ko"* "$work/lib/modules/"
done
cp "$mods/kernel/fs/fuse/fuse.ko"* "$work/lib/modules/" 2>/dev/null || true
# Compressed modules would need decompressing: busybox insmod takes .ko.
for f in "$work"/lib/modules/*.ko.xz; do
    [ -e "$f" ] && xz -d "$f"
done

cat > "$work/init" <<'INIT'
#!/bin/sh
export PATH=/bin LD_LIBRARY_PATH=/lib
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev \
         virtio_pci virtio_console; do
    insmod /lib/modules/$m.ko
done
# For the tests, a console that answers only what is asked (no echo, no
# prompt); for a person (hypfs.interactive on the kernel's command line,
# as docs/guests.md boots it), an ordinary shell.
case " $(cat /proc/cmdline) " in
*" hypfs.interactive "*) export PS1='guest# ' ;;
*) stty -echo -onlcr < /dev/console 2>/dev/null; export PS1= PS2= ;;
esac
echo "GUEST-READY $(cat /proc/uptime | cut -d' ' -f1)"
# Not on the way to the first read: commands wait in the console meanwhile.
[ -e /lib/modules/fuse.ko ] && insmod /lib/modules/fuse.ko
# The shell is not process 1: its end (or a test's kill) must not end the
# machine.  Process 1 stays, reaps orphans, and starts another.
while :; do
    sh < /dev/console > /dev/console 2>&1
    echo "SHELL-EXITED $?" > /dev/console
done
INIT
chmod 755 "$work/init"
# Uncompressed unless asked (OUT.gz): under TCG, inflating it costs the
# guest's kernel a good part of a second.
case "$out" in
*.gz) (cd "$work" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 > "$out" ;;
*) (cd "$work" && find . | busybox cpio -o -H newc 2>/dev/null) > "$out" ;;
esac
