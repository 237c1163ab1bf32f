#!/usr/bin/env bash
# Unmodified Xen tools against hypfsd.  Debian's own xenhypfs (Xen 4.17)
# is run two ways:
#   (a) with Debian's libxenhypfs and libxencall, through libhypfs-privcmd
#       (the privcmd device emulated by LD_PRELOAD);
#   (b) with our libxenhypfs.so.1 first in LD_LIBRARY_PATH;
# and for every case (ls, cat, cat -b, write, tree, every error) its
# output and exit status are compared byte for byte with our xenhypfs,
# which is run two ways too: over hypfsd's socket ("ours") and
#   (c) over the emulated privcmd device, as on a real Xen host.
#
# (b) and (c) must always match.  (a) must match except where Xen's library itself
# is wrong and ours is not; those cases are listed below with exactly what
# Xen's library prints, and that is checked too.  Skipped (with a message)
# only if Debian's packages cannot be fetched.
. "$(dirname "$0")/lib.sh"
. "$SOURCE_ROOT/tests/support/xen-debs.sh"
: "${PRIVCMD_LIB:?}"

xen_debs || skip "Debian's Xen packages cannot be fetched (network?)"
xen_bin=$XEN_ROOT/usr/sbin/xenhypfs
xen_lib=$(dirname "$(find "$XEN_ROOT" -name 'libxencall.so.1' | head -1)")

# An instrumented library in an uninstrumented program needs its runtime
# loaded first.
preload=
read -r -a cc <<< "${CC:-cc}"
case "${SANITIZE:-none}" in *thread*)
    skip "ThreadSanitizer's runtime cannot be preloaded reliably into Xen's \
uninstrumented xenhypfs; the comparison runs in the other configurations" ;;
esac
if [ "${SANITIZE:-none}" != none ]; then
    kind=asan
    case "$SANITIZE" in *thread*) kind=tsan ;; esac
    if "${cc[@]}" --version | grep -q clang; then
        preload="$("${cc[@]}" -print-runtime-dir)/libclang_rt.$kind-x86_64.so"
    else
        preload=$("${cc[@]}" -print-file-name="lib$kind.so")
    fi
    [ -f "$preload" ] || skip "no $kind runtime to preload ($preload)"
    export ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0
fi

run_variant() {   # NAME ARGS...: output and status in $tmp/NAME
    local name=$1 status=0
    shift
    case "$name" in
        ours) "$XENHYPFS" "$@" ;;
        a) env LD_PRELOAD="${preload:+$preload }$PRIVCMD_LIB" \
               LD_LIBRARY_PATH="$xen_lib" "$xen_bin" "$@" ;;
        b) env ${preload:+LD_PRELOAD="$preload"} \
               LD_LIBRARY_PATH="$LIBXENHYPFS_DIR:$xen_lib" "$xen_bin" "$@" ;;
        c) env LD_PRELOAD="$PRIVCMD_LIB" HYPFS_TRANSPORT=privcmd \
               "$XENHYPFS" "$@" ;;
    esac >"$tmp/$name.out" 2>"$tmp/$name.err" || status=$?
    {
        cat "$tmp/$name.out"
        sed 's/^/stderr: /' "$tmp/$name.err"
        echo "status: $status"
    } > "$tmp/$name"
}

start_hypfsd --test-tree

# Value of every writable test entry, to put back between variants.
snapshot() {
    local p
    for p in u8 u16 u32 u64 i8 i16 i32 i64 bool string; do
        printf '%s\t%s\n' "$p" "$("$XENHYPFS" cat "/test/types/$p")"
    done
    printf 'loglvl\t%s\n' "$("$XENHYPFS" cat /params/loglvl)"
    printf 'console_timestamps\t%s\n' \
        "$("$XENHYPFS" cat /params/console_timestamps)"
}
daemon_up=1
restore() {
    local p v
    [ -n "$daemon_up" ] || return 0
    while IFS=$'\t' read -r p v; do
        case "$p" in
            loglvl|console_timestamps) "$XENHYPFS" write "/params/$p" "$v" ;;
            *) "$XENHYPFS" write "/test/types/$p" "$v" ;;
        esac
    done < "$tmp/snapshot"
}
snapshot > "$tmp/snapshot"

compared=0
# compare ARGS...: all three from the same state, all identical.
compare() {
    local v
    for v in ours a b c; do
        [ "$1" != write ] || restore
        run_variant "$v" "$@"
    done
    [ "$1" != write ] || restore
    for v in a b c; do
        if ! cmp -s "$tmp/ours" "$tmp/$v"; then
            fail "xenhypfs $* differs in variant ($v)"
            diff -u "$tmp/ours" "$tmp/$v" >&2 || true
        fi
    done
    compared=$((compared + 1))
}

# deviates "XEN OUTPUT" ARGS...: Xen's library (a) prints XEN OUTPUT, ours
# corrects it; (b) still matches ours exactly.
deviates() {
    local xen=$1 v
    shift
    for v in ours a b c; do
        [ "$1" != write ] || restore
        run_variant "$v" "$@"
    done
    [ "$1" != write ] || restore
    for v in b c; do
        cmp -s "$tmp/ours" "$tmp/$v" ||
            { fail "xenhypfs $* differs in variant ($v)"; diff -u "$tmp/ours" "$tmp/$v" >&2 || true; }
    done
    check "Xen's library on: xenhypfs $*" "$xen" "$(cat "$tmp/a")"
    compared=$((compared + 1))
}

while IFS= read -r line; do
    [ -n "$line" ] || continue
    # shellcheck disable=SC2086
    compare $line
done <<'CASES'
ls /
ls /test
ls /test/
ls /test/types
ls /test/empty
ls /test/deep/l0/l1
ls /params
ls /domain
ls /cpupool/0
ls /buildinfo
ls /test/types/u8
ls /nothing
ls relative
cat /test/types/u8
cat /test/types/u16
cat /test/types/u32
cat /test/types/u64
cat /test/types/i8
cat /test/types/i16
cat /test/types/i32
cat /test/types/i64
cat /test/types/bool
cat /test/types/bool_ro
cat /test/types/string
cat /test/types/string_ro
cat /test/types/empty_string
cat /test/types/gzip_string
cat /test/types/string_odd
cat /test/types/string_big
cat /buildinfo/config
cat /buildinfo/version/major
cat /domain/0/name
cat /cpupool/0/sched-gran
cat /params/gnttab_max_frames
cat -b /test/types/string_odd
cat -b /test/types/string
cat -b /buildinfo/config
cat /test/types/blob
cat /test/types/empty_blob
cat /test/types/gzip_blob
cat /test
cat /nothing
cat -b /nothing
cat relative
write /test/types/u8 255
write /test/types/u8 0x10
write /test/types/u8 017
write /test/types/u8 256
write /test/types/u16 65535
write /test/types/u16 65536
write /test/types/u32 4294967295
write /test/types/i8 -128
write /test/types/i8 127
write /test/types/i64 -9223372036854775808
write /test/types/bool 1
write /test/types/bool off
write /test/types/bool yes
write /test/types/bool maybe
write /test/types/string hello-world
write /test/types/string_ro x
write /test/types/bool_ro 0
write /test/types/u32_ro 1
write /test/types/blob x
write /test/types/gzip_string x
write /test x
write /nothing 1
write /params/loglvl debug
write /params/loglvl loud
cat /params/console_timestamps
write /params/gnttab_max_frames 2
write /params/sync_console on
write /cpupool/0/sched-gran core
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
CASES

# Xen's runtime-parameter contract: a parameter takes values longer than
# the max_write_len it reports (7 here), up to 128 bytes: on Xen, Debian's
# tool writes "disable" (8 bytes) and gets 0, "nope-nope" the parser's
# EINVAL, 129 bytes ENOSPC.
compare write /params/console_timestamps disable
check "Xen's xenhypfs write /params/console_timestamps disable" "status: 0" \
    "$(cat "$tmp/a")"
compare write /params/console_timestamps nope-nope
check "Xen's xenhypfs write /params/console_timestamps nope-nope" \
    "stderr: could not write: Invalid argument
status: 3" "$(cat "$tmp/a")"
compare write /params/console_timestamps "$(printf 'x%.0s' $(seq 128))"
check "Xen's xenhypfs write of 129 bytes to /params/console_timestamps" \
    "stderr: could not write: No space left on device
status: 3" "$(cat "$tmp/a")"

# Where Xen's library is wrong: a non-number fails with errno 0, values
# that do not fit are truncated instead of refused (a negative value wraps
# into a uint, 128 into an int8 becomes -128), and every 8-byte uint but 0
# is refused.
deviates "stderr: could not write: Success
status: 3" write /test/types/u8 ten
deviates "stderr: could not write: Success
status: 3" write /test/types/i32 ""
deviates "status: 0" write /test/types/u8 -1
deviates "status: 0" write /test/types/i32 2147483648
deviates "status: 0" write /test/types/i8 128
deviates "status: 0" write /test/types/i16 -32769
deviates "stderr: could not write: Numerical result out of range
status: 3" write /test/types/u64 5

# Values larger than a first 4 KiB read: the -ENOBUFS retry of a read,
# and writes of a whole page and more, up to the entry's limit and past.
compare cat -b /test/types/blob_big
for n in 4095 4096 10000 16383 16384; do
    compare write /test/types/string_big "$(printf 'y%.0s' $(seq $n))"
done
compare ls /domain
# A listing above 4 KiB: the -ENOBUFS retry.
"$MKDOMAINS" "$HYPFS_SOCKET" 300 >/dev/null
compare ls /domain
compare tree

# A path longer than the ABI allows, identical in all three.
long=/$(printf 'x%.0s' $(seq 1100))
compare cat "$long"

# Without a hypervisor: the same output and status; our library says why
# first, naming the socket; Xen's gets no error from libxencall, which the
# emulation satisfies, so in variant (a) the emulation says why.
stop_hypfsd
daemon_up=
no_hypervisor() {
    local v
    for v in ours a b; do run_variant "$v" "$@"; done
    cmp -s "$tmp/ours" "$tmp/b" ||
        { fail "xenhypfs $* differs in variant (b)"; diff -u "$tmp/ours" "$tmp/b" >&2 || true; }
    check "xenhypfs $*: Xen's library, no hypervisor" \
        "$(grep -v '^stderr: xenhypfs: error: ' "$tmp/ours")" \
        "$(grep -v '^stderr: libhypfs-privcmd: ' "$tmp/a")"
    grep -q "^stderr: libhypfs-privcmd: cannot reach hypfsd at $HYPFS_SOCKET: " "$tmp/a" ||
        fail "xenhypfs $*: the emulation does not say why"
    grep -q "^stderr: xenhypfs: error: cannot reach hypfsd at $HYPFS_SOCKET: " "$tmp/ours" ||
        fail "xenhypfs $*: no reason naming the socket"
    compared=$((compared + 1))
}
no_hypervisor ls /
no_hypervisor tree

echo "$compared cases compared across (ours, a, b, c)"
finish
