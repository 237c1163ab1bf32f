#!/usr/bin/env bash
# xenhypfs's exact output and exit status for every command and error,
# against tests/golden/xenhypfs.txt.  The golden file was produced by Xen's
# own tool (Debian's xenhypfs 4.17) on this tree; the one documented
# difference (a non-number written to an integer: EINVAL, where Xen's
# library reports "Success") is marked in it.
. "$(dirname "$0")/lib.sh"

# XENHYPFS_UNDER_TEST can point at another xenhypfs (used to produce the
# golden file with Xen's).
X=${XENHYPFS_UNDER_TEST:-$XENHYPFS}
start_hypfsd --test-tree

# Each line: the arguments, word-split.
cases='
ls /
ls /test
ls /test/
ls /test/types
ls /test/empty
ls /params
ls /test/types/u8
ls /nothing
cat /test/types/u8
cat /test/types/u16
cat /test/types/u32
cat /test/types/u64
cat /test/types/i8
cat /test/types/i16
cat /test/types/i32
cat /test/types/i64
cat /test/types/bool
cat /test/types/string
cat /test/types/empty_string
cat /test/types/gzip_string
cat /test/types/string_odd
cat -b /test/types/string_odd
cat -b /test/types/string
cat /test/types/blob
cat /test/types/gzip_blob
cat /test
cat /nothing
cat -b /nothing
cat relative
write /test/types/u8 300
write /test/types/u8 -1
write /test/types/u8 0x7f
cat /test/types/u8
write /test/types/bool maybe
write /test/types/bool off
cat /test/types/bool
write /test/types/string_ro x
write /test/types/blob x
write /test
write /test/types/string new-value
cat /test/types/string
write /nothing 1
tree
cat
cat -x /test
cat -b
cat a b c
ls
ls a b
write /test/types/u8
write a b c
tree extra
frobnicate
'
{
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        printf '$ xenhypfs %s\n' "$line"
        status=0
        # shellcheck disable=SC2086
        "$X" $line >"$tmp/o" 2>"$tmp/e" || status=$?
        cat "$tmp/o"
        sed 's/^/stderr: /' "$tmp/e"
        echo "status: $status"
    done <<< "$cases"
    # The difference from Xen's library, kept apart.
    printf '$ xenhypfs write /test/types/u8 ten  (Xen: "could not write: Success")\n'
    status=0
    "$X" write /test/types/u8 ten >"$tmp/o" 2>"$tmp/e" || status=$?
    cat "$tmp/o"
    sed 's/^/stderr: /' "$tmp/e"
    echo "status: $status"
} > "$tmp/actual"

# No daemon: the library cannot open.  Over the emulated privcmd device
# (which a real hypervisor has no counterpart of) the emulation says why,
# then the library.
stop_hypfsd
if [ "$transport" = privcmd ]; then
    run_fails 2 "$X" ls /
    check "no hypervisor, privcmd: the reasons" \
"libhypfs-privcmd: cannot reach hypfsd at $HYPFS_SOCKET: No such file or directory (is hypfsd running? HYPFS_SOCKET chooses another socket)
xenhypfs: error: the hypfs hypercall through /dev/xen/privcmd failed: No such device
Could not open libxenhypfs" "$err"
    check "no hypervisor, privcmd: no output" "" "$out"
    # The rest is the same whatever the transport.
    sed '/ (no hypervisor)$/,$d' "$SOURCE_ROOT/tests/golden/xenhypfs.txt" \
        > "$tmp/golden"
else
    {
        printf '$ xenhypfs ls /  (no hypervisor)\n'
        status=0
        "$X" ls / >"$tmp/o" 2>"$tmp/e" || status=$?
        cat "$tmp/o"
        # The library says why first (as Xen's does through its logger).
        sed -e 's/^/stderr: /' -e "s|$tmp|\$TMP|g" "$tmp/e"
        echo "status: $status"
    } >> "$tmp/actual"
    cp "$SOURCE_ROOT/tests/golden/xenhypfs.txt" "$tmp/golden"
    if [ -n "${GOLDEN_UPDATE:-}" ]; then
        cp "$tmp/actual" "$SOURCE_ROOT/tests/golden/xenhypfs.txt"
        echo "golden file written"
    fi
fi
if ! diff -u "$tmp/golden" "$tmp/actual" >&2; then
    fail "xenhypfs output differs from tests/golden/xenhypfs.txt"
fi
finish
