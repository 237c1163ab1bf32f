#!/usr/bin/env bash
# meson install honours the prefix and DESTDIR and keeps out of the way of
# Debian's Xen packages (docs/install.md): headers, the libraries, the .pc
# files, the programs, man pages with this installation's paths, the
# systemd units, sysusers.d and tmpfiles.d land under DESTDIR/prefix; no
# file has a path Debian's Xen packages own, and our libxenhypfs.so.1 is
# in hypfs's own directory, not the loader's; a program built with the
# installed hypfs-xenhypfs.pc finds our library by itself and runs.
. "$(dirname "$0")/lib.sh"
: "${MESON_BUILD_DIR:?}"

dest=$tmp/dest
run_ok meson install -C "$MESON_BUILD_DIR" --destdir "$dest" --no-rebuild --quiet
prefix=$(meson introspect --buildoptions "$MESON_BUILD_DIR" |
         sed -n 's/.*"name": "prefix", "value": "\([^"]*\)".*/\1/p')
libdir=$(meson introspect --buildoptions "$MESON_BUILD_DIR" |
         sed -n 's/.*"name": "libdir", "value": "\([^"]*\)".*/\1/p')
[ -n "$prefix" ] && [ -n "$libdir" ] || fail "cannot read prefix/libdir"
root=$dest$prefix
units=lib/systemd/system
[ "$prefix" != /usr ] || units=$(pkg-config --variable=systemdsystemunitdir systemd | sed 's|^/usr/||')
for f in include/hypfs/xen/xenhypfs.h include/hypfs/abi.h include/hypfs/hypfs.h \
         include/hypfs/msg.h "$libdir/hypfs/xen/libxenhypfs.so.1" \
         "$libdir/hypfs/xen/libxenhypfs.so" "$libdir/hypfs/libhypfs-privcmd.so" \
         "$libdir/libhypfs.so.1" "$libdir/pkgconfig/hypfs-xenhypfs.pc" \
         "$libdir/pkgconfig/hypfs.pc" bin/hypfs libexec/hypfs/xenhypfs \
         sbin/hypfsd sbin/hypfsctl share/hypfs/hypfs-xen-ld.so.conf \
         share/man/man8/hypfsd.8 share/man/man8/hypfsctl.8 \
         share/man/man1/hypfs.1 "$units/hypfsd.service" \
         lib/sysusers.d/hypfsd.conf lib/tmpfiles.d/hypfsd.conf \
         share/doc/hypfs/paths.md share/doc/hypfs/protocol.md \
         share/doc/hypfs/install.md share/bash-completion/completions/hypfs \
         share/bash-completion/completions/hypfsd \
         ${HYPFS_EXPORTER:+share/bash-completion/completions/hypfs-exporter} \
         ${HYPFS_EXPORTER:+sbin/hypfs-exporter share/man/man8/hypfs-exporter.8} \
         ${HYPFS_EXPORTER:+$units/hypfs-exporter.service} \
         ${HYPFS_EXPORTER:+share/doc/hypfs/prometheus/hypfs.rules.yml} \
         ${HYPFS_EXPORTER:+share/doc/hypfs/prometheus/hypfs-exporter-xen.conf}; do
    [ -e "$root/$f" ] || [ -L "$root/$f" ] || fail "not installed: $prefix/$f"
done
check "the xenhypfs link" "$prefix/bin/hypfs" \
    "$(cd "$root/libexec/hypfs" && readlink -f xenhypfs | sed "s|^$dest||")"

# Nothing at a path of Debian's Xen packages (xen-utils-common,
# xen-utils-4.17, libxenhypfs1, libxen-dev own these), whatever the prefix:
# no libxenhypfs.so* in a directory the loader searches by default.
for f in bin/xenhypfs sbin/xenhypfs include/xenhypfs.h include/xen/hypfs.h \
         share/man/man1/xenhypfs.1 share/man/man1/xenhypfs.1.gz \
         "$libdir/pkgconfig/xenhypfs.pc"; do
    [ ! -e "$root/$f" ] || fail "installed at a path of Debian's Xen packages: $prefix/$f"
done
found=$(cd "$root" && ls "$libdir"/libxenhypfs.so* lib/libxenhypfs.so* 2>/dev/null || true)
check "libxenhypfs in the loader's directories" "" "$found"
# The man pages name this installation's paths, and no template is left.
grep -q "$prefix/share/doc/hypfs/paths.md" "$root/share/man/man1/hypfs.1" ||
    fail "hypfs.1 does not name $prefix/share/doc/hypfs/paths.md"
grep -l '@[A-Z]*@' "$root"/share/man/man*/* && fail "a man page has @VARIABLE@ left"
grep -q "^$prefix/$libdir/hypfs/xen\$" "$root/share/hypfs/hypfs-xen-ld.so.conf" ||
    fail "hypfs-xen-ld.so.conf does not name $prefix/$libdir/hypfs/xen"
# Nothing outside DESTDIR/prefix.
outside=$(cd "$dest" && find . -type f | grep -v "^\.$prefix/" || true)
check "files installed outside the prefix" "" "$outside"
grep -q "^ExecStart=$prefix/sbin/hypfsd \$HYPFSD_OPTIONS$" "$root/$units/hypfsd.service" ||
    fail "the unit does not start the installed hypfsd"

# The installed programs find the installed libraries by themselves
# (RUNPATH), unless the prefix is /usr, whose libdir is searched anyway.
for b in sbin/hypfsd; do
    runpath=$(readelf -d "$root/$b" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
    if [ "$prefix" = /usr ]; then
        check "$b: no RUNPATH under /usr" "" "$runpath"
    else
        check "$b: RUNPATH" "$prefix/$libdir" "$runpath"
    fi
done

# Build with the installed hypfs-xenhypfs.pc: the program finds our library
# by itself (RUNPATH), not the system's.
read -r -a cc <<< "${CC:-cc}"
case "${SANITIZE:-none}" in none) ;; *) cc+=("-fsanitize=$SANITIZE") ;; esac
flags=$(PKG_CONFIG_PATH="$root/$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest" \
        pkg-config --cflags --libs hypfs-xenhypfs)
# shellcheck disable=SC2086
"${cc[@]}" -o "$tmp/user" "$SOURCE_ROOT/tests/abi/xen-api-user.c" $flags ||
    fail "cannot build with the installed hypfs-xenhypfs.pc ($flags)"
runpath=$(readelf -d "$tmp/user" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
check "a program built with hypfs-xenhypfs.pc: RUNPATH" "$dest$prefix/$libdir/hypfs/xen" "$runpath"
start_hypfsd --test-tree
run_ok "$tmp/user" /test/deep
check "installed library serves" "l0 type=0 enc=0 size=40 w=0
u16 after write: 1234" "$out"
stop_hypfsd
finish
