#!/usr/bin/env bash
# meson install honours the prefix and DESTDIR: headers, the libraries,
# xenhypfs.pc, the programs, man pages and the systemd unit land under
# DESTDIR/prefix, and a program built with the installed pkg-config file
# runs against the installed library.
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
for f in include/xenhypfs.h include/hypfs/abi.h include/hypfs/hypfs.h \
         include/hypfs/msg.h "$libdir/libxenhypfs.so.1" "$libdir/libxenhypfs.so" \
         "$libdir/pkgconfig/xenhypfs.pc" "$libdir/pkgconfig/hypfs.pc" \
         sbin/hypfsd sbin/hypfsctl sbin/xenhypfs \
         share/man/man8/hypfsd.8 share/man/man8/hypfsctl.8 \
         share/man/man1/xenhypfs.1 lib/systemd/system/hypfsd.service \
         share/doc/hypfs/paths.md share/doc/hypfs/protocol.md \
         share/bash-completion/completions/xenhypfs \
         ${HYPFS_EXPORTER:+sbin/hypfs-exporter share/man/man8/hypfs-exporter.8} \
         ${HYPFS_EXPORTER:+lib/systemd/system/hypfs-exporter.service} \
         ${HYPFS_EXPORTER:+share/doc/hypfs/prometheus/hypfs.rules.yml}; do
    [ -e "$root/$f" ] || fail "not installed: $prefix/$f"
done
# Nothing outside DESTDIR/prefix.
outside=$(cd "$dest" && find . -type f | grep -v "^\.$prefix/" || true)
check "files installed outside the prefix" "" "$outside"
grep -q "^ExecStart=$prefix/sbin/hypfsd \$HYPFSD_OPTIONS$" "$root/lib/systemd/system/hypfsd.service" ||
    fail "the unit does not start the installed hypfsd"

# The installed programs find the installed libraries by themselves
# (RUNPATH), unless the prefix is /usr, whose libdir is searched anyway.
for b in sbin/xenhypfs sbin/hypfsd; do
    runpath=$(readelf -d "$root/$b" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
    if [ "$prefix" = /usr ]; then
        check "$b: no RUNPATH under /usr" "" "$runpath"
    else
        check "$b: RUNPATH" "$prefix/$libdir" "$runpath"
    fi
done

# Build with the installed xenhypfs.pc and run against the installed library.
read -r -a cc <<< "${CC:-cc}"
case "${SANITIZE:-none}" in none) ;; *) cc+=("-fsanitize=$SANITIZE") ;; esac
flags=$(PKG_CONFIG_PATH="$root/$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest" \
        pkg-config --cflags --libs xenhypfs)
# shellcheck disable=SC2086
"${cc[@]}" -o "$tmp/user" "$SOURCE_ROOT/tests/abi/xen-api-user.c" $flags ||
    fail "cannot build with the installed xenhypfs.pc ($flags)"
start_hypfsd --test-tree
run_ok env LD_LIBRARY_PATH="$root/$libdir" "$tmp/user" /test/deep
check "installed library serves" "l0 type=0 enc=0 size=40 w=0
u16 after write: 1234" "$out"
stop_hypfsd
finish
