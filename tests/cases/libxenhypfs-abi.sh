#!/usr/bin/env bash
# libxenhypfs.so.1 is Xen's ABI: its SONAME, exactly Xen's six functions
# in version node VERS_1.0, and hypfs's own additions (interface version
# 2) in VERS_1.1 and nothing else; a program compiled against Xen's
# own xenhypfs.h links and runs against it; and the same program built and
# linked against Xen's library runs unchanged with ours in its place.
. "$(dirname "$0")/lib.sh"
. "$SOURCE_ROOT/tests/support/xen-debs.sh"

lib="$LIBXENHYPFS_DIR/libxenhypfs.so.1"
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
check "SONAME" libxenhypfs.so.1 "$soname"
# Every defined dynamic symbol, with its version.
syms=$(objdump -T "$lib" | awk '$2 == "g" && $4 != "*UND*" {print $(NF-1), $NF}' | sort)
check "exported symbols" "VERS_1.0 VERS_1.0
VERS_1.0 xenhypfs_close
VERS_1.0 xenhypfs_open
VERS_1.0 xenhypfs_read
VERS_1.0 xenhypfs_read_raw
VERS_1.0 xenhypfs_readdir
VERS_1.0 xenhypfs_write
VERS_1.1 VERS_1.1
VERS_1.1 xenhypfs_event_fd
VERS_1.1 xenhypfs_get_generation
VERS_1.1 xenhypfs_read_events
VERS_1.1 xenhypfs_read_tree
VERS_1.1 xenhypfs_unwatch
VERS_1.1 xenhypfs_value_bytes
VERS_1.1 xenhypfs_value_string
VERS_1.1 xenhypfs_watch
VERS_1.1 xenhypfs_write_limit" "$syms"

xen_debs || skip "Debian's Xen packages cannot be fetched (network?): \
the symbol checks passed, the build checks against Xen's header need them"
read -r -a cc <<< "${CC:-cc}"
case "${SANITIZE:-none}" in
    none) ;;
    *) cc+=("-fsanitize=$SANITIZE") ;;
esac
start_hypfsd --test-tree
src="$SOURCE_ROOT/tests/abi/xen-api-user.c"
inc="$XEN_ROOT/usr/include"
xenlib=$(dirname "$(find "$XEN_ROOT" -name 'libxenhypfs.so.1' | head -1)")

# Built against Xen's header, linked against ours.  Each run starts from
# the same state (the program writes u16 at its end).
"$XENHYPFS" write /test/types/u16 65000
"${cc[@]}" -o "$tmp/api-ours" -I"$inc" "$src" -L"$LIBXENHYPFS_DIR" -lxenhypfs
LD_LIBRARY_PATH=$LIBXENHYPFS_DIR "$tmp/api-ours" > "$tmp/ours.out" ||
    fail "program built against Xen's header failed against our library"

# Built and linked against Xen's library; run with ours instead.
ln -sf "$xenlib/libxenhypfs.so.1" "$tmp/libxenhypfs.so"
"${cc[@]}" -o "$tmp/api-xen" -I"$inc" "$src" -L"$tmp" -lxenhypfs \
    -Wl,--allow-shlib-undefined
needed=$(readelf -d "$tmp/api-xen" | sed -n 's/.*Shared library: \[\(libxenhypfs[^]]*\)\]/\1/p')
check "the Xen-built program needs" libxenhypfs.so.1 "$needed"
imports=$(objdump -T "$tmp/api-xen" | awk '/xenhypfs_/ {print $(NF-1)}' | tr -d '()' | sort -u)
check "it binds to version node" VERS_1.0 "$imports"
"$XENHYPFS" write /test/types/u16 65000
run_ok env LD_LIBRARY_PATH="$LIBXENHYPFS_DIR" "$tmp/api-xen"
check "same output either way" "$(cat "$tmp/ours.out")" "$out"
case "$out" in
    *"u16 after write: 1234"*) ;;
    *) fail "unexpected output: $out" ;;
esac
echo "$out" | head -3

stop_hypfsd
finish
