#!/usr/bin/env bash
# hypfs's Debian packages, as a packager and an administrator meet them:
#   1. dpkg-buildpackage -us -uc -b builds them (from a copy of this tree);
#   2. lintian finds no error and no warning;
#   3. no path of ours is a path of Debian's Xen packages (xen-utils-common,
#      xen-utils-4.17, libxenhypfs1, libxen-dev: dpkg-deb -c of both);
#   4. in a throwaway Debian 12 root (mmdebstrap; nothing is installed on
#      this machine), ours and Debian's xen-utils-4.17 and libxenhypfs1 are
#      installed by one apt-get, with no conflict; Debian's xenhypfs and xl
#      still load Debian's libxenhypfs.so.1, after ldconfig too, and load
#      ours only when asked (per command, and system-wide until undone);
#      our tools run from the packages against hypfsd started from its
#      package, Debian's xenhypfs through our privcmd emulation; the
#      packages' users exist;
#   5. purging ours leaves none of their files, and Xen's tools as they were.
# The packages are left in $HYPFS_DEBS (default BUILD/debs) for the Xen
# suite, which runs our tools from them.  Run once, on the plain build
# (meson test --suite packaging); it needs the network to the Debian
# archive, and fails without it.
. "$(dirname "$0")/../cases/lib.sh"
for c in dpkg-buildpackage lintian mmdebstrap; do
    command -v "$c" >/dev/null ||
        { echo "$c is missing (./run deps installs it)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "needs root (mmdebstrap's root mode, chroot)"; exit 1; }
out=${HYPFS_DEBS:-$MESON_BUILD_DIR/debs}
root=$tmp/root
trap 'umount "$root/proc" 2>/dev/null || true; cleanup' EXIT

# ---- 1. Build ----
mkdir -p "$tmp/src/hypfs"
(cd "$SOURCE_ROOT" && tar --exclude='./build*' --exclude=./.cache \
     --exclude=./debian/tmp --exclude='./debian/.debhelper' -cf - .) |
    tar -xf - -C "$tmp/src/hypfs"
if ! (cd "$tmp/src/hypfs" && dpkg-buildpackage -us -uc -b) > "$tmp/build.log" 2>&1; then
    tail -40 "$tmp/build.log"
    fail "dpkg-buildpackage failed"
    finish
fi
rm -rf "$out"
mkdir -p "$out"
mv "$tmp"/src/*.deb "$tmp"/src/*.changes "$tmp"/src/*.buildinfo "$out/"
ls "$out"
debs=$(ls "$out"/*.deb | grep -v -- -dbgsym_)

# ---- 2. lintian ----
if ! lintian --fail-on error,warning "$out"/*.changes > "$tmp/lintian" 2>&1; then
    cat "$tmp/lintian"
    fail "lintian reports errors or warnings"
fi
echo "lintian: $(grep -c '^[EW]:' "$tmp/lintian") errors and warnings," \
     "$(grep -c '^I:' "$tmp/lintian") notes"

# ---- 3. No path in common with Debian's Xen packages ----
xen_pkgs="xen-utils-common xen-utils-4.17 libxenhypfs1 libxen-dev"
mkdir -p "$tmp/xen"
# shellcheck disable=SC2086
(cd "$tmp/xen" && apt-get download -q $xen_pkgs >/dev/null 2>&1) ||
    { fail "cannot download $xen_pkgs"; finish; }
paths() {   # DEB...: the paths of their files and links, not directories
    local d
    for d in "$@"; do dpkg-deb -c "$d"; done |
        awk '$1 !~ /^d/ { print $6 }' | sed 's|^\./|/|' | sort -u
}
# shellcheck disable=SC2086
paths $debs > "$tmp/ours.paths"
paths "$tmp"/xen/*.deb > "$tmp/xen.paths"
common=$(comm -12 "$tmp/ours.paths" "$tmp/xen.paths")
check "paths both in our packages and in Debian's Xen packages" "" "$common"
echo "$(wc -l < "$tmp/ours.paths") paths of ours, $(wc -l < "$tmp/xen.paths") of Xen's," \
     "$(grep -c . <<<"$common" || true) in common"

# ---- 4. Installed beside Debian's Xen, in a Debian root of its own ----
sources=()
for s in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
         /etc/apt/sources.list.d/*.sources; do
    if [ -s "$s" ]; then sources+=("$s"); fi
done
mmdebstrap --quiet --variant=apt --mode=root bookworm "$root" "${sources[@]}" \
    > "$tmp/mmdebstrap.log" 2>&1 ||
    { cat "$tmp/mmdebstrap.log"; fail "mmdebstrap could not make a Debian root"; finish; }
mkdir -p "$root/tmp/debs"
# shellcheck disable=SC2086
cp $debs "$root/tmp/debs/"
# Nothing the packages install may start a service here.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -c "$1"; }
if ! in_root "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends /tmp/debs/*.deb $xen_pkgs" \
        > "$tmp/install.log" 2>&1; then
    tail -30 "$tmp/install.log"
    fail "ours and Debian's Xen packages could not be installed together"
    finish
fi
run_ok in_root "dpkg --audit"
check "dpkg --audit after installing both" "" "$out"
grep -i conflict "$tmp/install.log" && fail "apt or dpkg said conflict"

# The file a program loads as libxenhypfs.so.1, as ldd finds it (the link
# followed: /lib and /usr/lib are one on Debian 12).
loads() {   # PROGRAM [ENV]
    in_root "${2:-} ldd $1 | awk '/libxenhypfs.so.1/ { print \$3 }' | xargs -r readlink -f"
}
xl=/usr/lib/xen-4.17/bin/xl
debian_lib=$(in_root "readlink -f \$(dpkg -L libxenhypfs1 | grep 'libxenhypfs.so.1\$')")
ours_lib=$(in_root "readlink -f /usr/lib/x86_64-linux-gnu/hypfs/xen/libxenhypfs.so.1")
[ "$debian_lib" != "$ours_lib" ] && [ -n "$debian_lib" ] ||
    fail "Debian's and our library: '$debian_lib', '$ours_lib'"
for p in /usr/sbin/xenhypfs $xl; do
    check "$p loads Debian's library" "$debian_lib" "$(loads "$p")"
done
run_ok in_root "ldconfig && ldconfig -p | grep 'libxenhypfs.so.1 '"
check "ldconfig -p after ldconfig: one libxenhypfs.so.1" 1 "$(wc -l <<<"$out")"
[ "$(in_root "readlink -f $(awk '{ print $NF }' <<<"$out")")" = "$debian_lib" ] ||
    fail "ldconfig -p lists another libxenhypfs.so.1 than Debian's: $out"
for p in /usr/sbin/xenhypfs $xl; do
    check "$p after ldconfig loads Debian's library" "$debian_lib" "$(loads "$p")"
done
# Ours, when asked: for one command, and system-wide until undone.
check "xl with LD_LIBRARY_PATH loads ours" "$ours_lib" \
    "$(loads "$xl" "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/hypfs/xen")"
run_ok in_root "ln -s /usr/share/hypfs/hypfs-xen-ld.so.conf /etc/ld.so.conf.d/00-hypfs-xen.conf && ldconfig"
check "xl after the system-wide step loads ours" "$ours_lib" "$(loads "$xl")"
run_ok in_root "rm /etc/ld.so.conf.d/00-hypfs-xen.conf && ldconfig"
check "xl after undoing it loads Debian's" "$debian_lib" "$(loads "$xl")"

# Our tools from the packages, against hypfsd from its package.
run_ok in_root "getent passwd hypfsd hypfs-exporter | cut -d: -f1"
check "the packages' system users" "hypfsd
hypfs-exporter" "$out"
cat > "$root/tmp/use.sh" <<'USE'
set -e
/usr/sbin/hypfsd --socket /tmp/h.sock --quiet &
pid=$!
trap 'kill $pid; wait $pid' EXIT
for i in $(seq 100); do [ -S /tmp/h.sock ] && break; sleep 0.05; done
export HYPFS_SOCKET=/tmp/h.sock
hypfs write /params/loglvl info
echo "hypfs: $(hypfs cat /params/loglvl)"
hypfsctl domain-create web >/dev/null
echo "xenhypfs link: $(/usr/libexec/hypfs/xenhypfs ls /domain | tr '\n' ' ')"
echo "Debian's xenhypfs, emulated privcmd: $(LD_PRELOAD=/usr/lib/x86_64-linux-gnu/hypfs/libhypfs-privcmd.so xenhypfs cat /domain/1/name)"
echo "Debian's xenhypfs, our library: $(LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/hypfs/xen xenhypfs cat /params/loglvl)"
hypfs-exporter --version
hypfs-fuse --version
USE
run_ok in_root "sh /tmp/use.sh"
check "our tools from the packages" "hypfs: info/info
xenhypfs link: <dir>    r- 0 <dir>    r- 1 
Debian's xenhypfs, emulated privcmd: web
Debian's xenhypfs, our library: info/info
hypfs-exporter (hypfs) 0.1.0
hypfs-fuse (hypfs) 0.1.0" "$out"
[ -z "$err" ] || echo "stderr: $err"

# ---- 5. Purged: nothing of ours left ----
pkgs=$(for d in $debs; do dpkg-deb -f "$d" Package; done | tr '\n' ' ')
run_ok in_root "DEBIAN_FRONTEND=noninteractive apt-get purge -y $pkgs"
left=$(while read -r p; do
           if [ -e "$root$p" ] || [ -L "$root$p" ]; then echo "$p"; fi
       done < "$tmp/ours.paths")
check "files of ours left after purge" "" "$left"
for f in /etc/default/hypfsd /run/hypfs /usr/lib/x86_64-linux-gnu/hypfs \
         /usr/share/hypfs /usr/share/doc/hypfs; do
    [ ! -e "$root$f" ] || fail "left after purge: $f"
done
check "Debian's xenhypfs after our purge" "$debian_lib" "$(loads /usr/sbin/xenhypfs)"
finish
