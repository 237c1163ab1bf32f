#!/usr/bin/env bash
# hypfs-fuse with the commands people use: ls -l, cat, stat, find, grep -r,
# echo >; errors; live values and dynamic directories; access rights with
# and without -o allow_other, as real users; unmount by fusermount3 -u and
# by SIGTERM.  Skipped only where FUSE is unavailable.
. "$(dirname "$0")/lib.sh"
: "${HYPFS_FUSE:?}"

[ -e /dev/fuse ] || skip "/dev/fuse is missing (no FUSE in this kernel or container)"
command -v fusermount3 >/dev/null || skip "fusermount3 is missing (Debian: fuse3)"

mnt=$tmp/mnt
mkdir "$mnt"
fuse_pid=
mount_fuse() {
    "$HYPFS_FUSE" -f "$@" "$mnt" 2>"$tmp/fuse.log" &
    fuse_pid=$!
    for _ in $(seq 200); do
        mountpoint -q "$mnt" && return 0
        kill -0 "$fuse_pid" 2>/dev/null || break
        sleep 0.02
    done
    cat "$tmp/fuse.log" >&2
    fail "hypfs-fuse did not mount"
    exit 1
}
unmount_fuse() {       # unmount_fuse [SIGTERM]
    local status=0
    if [ "${1:-}" = SIGTERM ]; then
        kill -TERM "$fuse_pid"
    elif ! fusermount3 -u "$mnt"; then
        fail "fusermount3 -u failed"
        kill -TERM "$fuse_pid"
    fi
    # A hypfs-fuse that does not end is a failure, not a hung test.
    for _ in $(seq 1000); do
        kill -0 "$fuse_pid" 2>/dev/null || break
        sleep 0.01
    done
    if kill -0 "$fuse_pid" 2>/dev/null; then
        fail "hypfs-fuse still running 10 s after ${1:-fusermount3 -u}"
        fusermount3 -u -z "$mnt" 2>/dev/null
        kill -KILL "$fuse_pid"
    fi
    wait "$fuse_pid" || status=$?
    fuse_pid=
    [ "$status" = 0 ] || cat "$tmp/fuse.log" >&2
    check "hypfs-fuse exit status after ${1:-fusermount3 -u}" 0 "$status"
    mountpoint -q "$mnt" && fail "still mounted after ${1:-fusermount3 -u}"
    return 0
}
trap 'if [ -n "$fuse_pid" ]; then fusermount3 -u -z "$mnt" 2>/dev/null; kill "$fuse_pid" 2>/dev/null; fi
      [ "$failures" -eq 0 ] || { echo "--- hypfs-fuse said:"; cat "$tmp/fuse.log"; } >&2 2>/dev/null
      cleanup' EXIT

# No daemon: a clear error, and no mount.  (Over the emulated privcmd
# device, hypfsd is found by $HYPFS_SOCKET, which the emulation names.)
if [ "$transport" = socket ]; then
    run_fails 1 "$HYPFS_FUSE" -f --socket="$tmp/none.sock" "$mnt"
else
    run_fails 1 env HYPFS_SOCKET="$tmp/none.sock" "$HYPFS_FUSE" -f "$mnt"
fi
case "$err" in *"cannot reach hypfsd at $tmp/none.sock"*) ;;
    *) fail "no daemon: unclear message: $err" ;; esac
mountpoint -q "$mnt" && fail "mounted without a hypervisor"

start_hypfsd --test-tree
mount_fuse

# Directories are directories, leaves files, with per-entry modes.
run_ok ls -l "$mnt"
check "root listing" "dr-xr-xr-x buildinfo
dr-xr-xr-x cpupool
dr-xr-xr-x domain
dr-xr-xr-x params
dr-xr-xr-x test" "$(echo "$out" | awk 'NR > 1 {print $1, $NF}')"
check "mode of a writable uint" "-rw-r--r--" "$(stat -c %A "$mnt/test/types/u16")"
check "mode of a read-only string" "-r--r--r--" "$(stat -c %A "$mnt/test/types/string_ro")"
check "mode of a read-only gzip entry" "-r--r--r--" "$(stat -c %A "$mnt/buildinfo/config")"

# Every file holds what xenhypfs cat prints and a newline (blobs: bytes),
# and st_size is its true length.
nfiles=0
while IFS= read -r f; do
    p=${f#"$mnt"}
    nfiles=$((nfiles + 1))
    case "$p" in
        /test/types/blob|/test/types/empty_blob|/test/types/gzip_blob|\
        /test/types/blob_big) continue ;;
    esac
    "$XENHYPFS" cat "$p" > "$tmp/expect" || fail "xenhypfs cat $p"
    cmp -s "$tmp/expect" "$f" || fail "content of $p differs from xenhypfs cat"
    check "st_size of $p" "$(wc -c < "$tmp/expect")" "$(stat -c %s "$f")"
done < <(find "$mnt" -type f | sort)
# tree prints "/" first, then one line per entry; directories end in "/".
check "files found by find" "$("$XENHYPFS" tree | grep -vc '/$')" "$nfiles"
check "directories found by find" \
    "$(("$("$XENHYPFS" tree | grep -c '/$')" - 1))" \
    "$(find "$mnt" -mindepth 1 -type d | wc -l)"
printf '\000\001\177\200\377' > "$tmp/blob"
cmp "$tmp/blob" "$mnt/test/types/blob" || fail "blob bytes"
cmp "$tmp/blob" "$mnt/test/types/gzip_blob" || fail "gzip blob, inflated"
check "empty blob size" 0 "$(stat -c %s "$mnt/test/types/empty_blob")"
# Values beyond a first 4 KiB read, both ways.
perl -e 'print map { chr(($_ * 7 + int($_ / 256)) % 256) } 0 .. 8999' > "$tmp/bigblob"
cmp "$tmp/bigblob" "$mnt/test/types/blob_big" || fail "a 9000-byte blob's bytes"
check "a 9000-byte blob's size" 9000 "$(stat -c %s "$mnt/test/types/blob_big")"
perl -e 'print "x" x 10000' > "$tmp/bigstr"
cp "$tmp/bigstr" "$mnt/test/types/string_big" || fail "a 10000-byte write"
check "a 10000-byte write, read back" 10000 "$("$XENHYPFS" cat /test/types/string_big | tr -d '\n' | wc -c)"
run_ok grep -r Domain-0 "$mnt"
check "grep -r" "$mnt/domain/0/name:Domain-0" "$out"
run_ok grep -rl CONFIG_HYPFS=y "$mnt/buildinfo"
check "grep -r through gzip content" "$mnt/buildinfo/config" "$out"

# Writing a file sets the entry; a trailing newline does not matter.
echo 1 > "$mnt/test/types/bool" || fail "echo 1 > bool"
check "bool after echo" 1 "$("$XENHYPFS" cat /test/types/bool)"
printf 0 > "$mnt/test/types/bool" || fail "printf 0 > bool"
check "bool after printf" 0 "$("$XENHYPFS" cat /test/types/bool)"
echo 0x20 > "$mnt/test/types/u8" || fail "echo 0x20 > u8"
check "u8 after echo" 32 "$(cat "$mnt/test/types/u8")"
echo "a value with spaces" > "$mnt/test/types/string"
check "string with spaces" "a value with spaces" "$("$XENHYPFS" cat /test/types/string)"
echo info/debug > "$mnt/params/loglvl"
check "a parameter" info/all "$("$XENHYPFS" cat /params/loglvl)"
printf '\001\002' > "$mnt/test/types/blob" || fail "blob write"
check "blob written raw" "$(printf '\001\002' | od -An -tx1)" "$(od -An -tx1 < "$mnt/test/types/blob")"

# Invalid values: the library's errno, and nothing changes.
refused() {     # PATH VALUE MESSAGE
    local before
    before=$("$XENHYPFS" cat "$1")
    run_fails 1 bash -c "echo '$2' > '$mnt$1'"
    case "$err" in *"$3"*) ;; *) fail "echo '$2' > $1: '$err' lacks '$3'" ;; esac
    check "$1 unchanged after '$2'" "$before" "$("$XENHYPFS" cat "$1")"
}
refused /test/types/u8 300 "Numerical result out of range"
refused /test/types/u8 ten "Invalid argument"
refused /test/types/i8 -129 "Numerical result out of range"
refused /test/types/bool maybe "Numerical argument out of domain"
refused /params/loglvl loud "Invalid argument"
refused /params/gnttab_max_frames 1x "Invalid argument"
refused /params/gnttab_max_frames 2147483648 "Numerical result out of range"
refused /test/types/string_ro x "Permission denied"
refused /test/types/string "$(printf 'x%.0s' $(seq 80))" "No space left on device"
run_fails 1 bash -c "echo x > '$mnt/test'"
# Every write is a whole value, wherever it lands (as on sysfs): a NUL
# byte written at an offset is refused like any value with a NUL.
run_fails 1 dd if=/dev/zero of="$mnt/test/types/string" bs=1 count=1 seek=1 conv=notrunc status=none
echo 7 >> "$mnt/test/types/u8" || fail "echo 7 >> u8"
check "an append sets the value" 7 "$("$XENHYPFS" cat /test/types/u8)"
# A lone newline written after a value (printf may split 'a\n\n') is its end.
exec {w}>"$mnt/test/types/string"
printf 'split\n' >&"$w" && printf '\n' >&"$w" || fail "a value, then a newline"
exec {w}>&-
check "value then newline" split "$("$XENHYPFS" cat /test/types/string)"
# The shape is the hypervisor's.
run_fails 1 touch "$mnt/test/new"
run_fails 1 mkdir "$mnt/test/newdir"
run_fails 1 rm "$mnt/test/types/u8"
run_fails 1 chmod 777 "$mnt/test/types/u8"

# Live: changes made elsewhere show at once, dynamic directories included.
"$XENHYPFS" write /params/loglvl info
check "read after an outside write" info/info "$(cat "$mnt/params/loglvl")"
"$XENHYPFS" write /params/loglvl error
check "and after another" error/error "$(cat "$mnt/params/loglvl")"
id=$("$HYPFSCTL" domain-create fused)
check "a new domain appears" fused "$(cat "$mnt/domain/$id/name")"
ls "$mnt/domain" | grep -qx "$id" || fail "new domain not listed"
"$HYPFSCTL" domain-destroy "$id"
ls "$mnt/domain" | grep -qx "$id" && fail "destroyed domain still listed"
[ -e "$mnt/domain/$id" ] && fail "destroyed domain still there"

# Mounting again on a hypfs mount is refused (it would stack).
run_fails 1 "$HYPFS_FUSE" -f "$mnt"
case "$err" in *"mounted there already"*) ;; *) fail "second mount: $err" ;; esac

# The rest is about hypfsd's socket (an outage of hypfsd, which a real
# hypervisor reached through privcmd has no counterpart of; which socket is
# used) and users hypfsd tells apart, which through privcmd the hypervisor
# cannot: there, a mount for other users is refused.
if [ "$transport" = privcmd ]; then
    unmount_fuse
    run_fails 1 "$HYPFS_FUSE" -f -o allow_other "$mnt"
    case "$err" in *"allow_other: through /dev/xen/privcmd the hypervisor cannot tell users apart"*) ;;
        *) fail "allow_other over privcmd: $err" ;; esac
    mountpoint -q "$mnt" && fail "mounted with allow_other over privcmd"
    # Xen's interface version 1 has no watches: nothing could drop a
    # cached value, so -o cache_values is refused with that reason.
    run_fails 1 "$HYPFS_FUSE" -f -o cache_values "$mnt"
    case "$err" in *"cache_values: the hypervisor offers no watches here"*) ;;
        *) fail "cache_values over privcmd: $err" ;; esac
    mountpoint -q "$mnt" && fail "mounted with cache_values over privcmd"
    stop_hypfsd
    finish
    exit
fi

# hypfsd away: the mountpoint stays a directory, requests fail with EIO,
# the outage and the recovery are logged once each.
stop_hypfsd
[ -d "$mnt" ] || fail "the mountpoint is not a directory during an outage"
run_fails 1 cat "$mnt/params/loglvl"
case "$err" in *"Input/output error"*) ;; *) fail "during an outage: $err" ;; esac
run_fails 2 ls "$mnt"
start_hypfsd --test-tree
check "back after the outage" warning/warning "$(cat "$mnt/params/loglvl")"
check "outage logged once" 1 "$(grep -c 'every request fails with EIO' "$tmp/fuse.log")"
check "recovery logged once" 1 "$(grep -c 'can be reached again' "$tmp/fuse.log")"
unmount_fuse

# As mount(8) and fstab run it: a source, and -o socket=.
real_socket=$HYPFS_SOCKET
HYPFS_SOCKET=$tmp/none.sock mount_fuse hypfs -o "socket=$real_socket"
check "mounted with -o socket=" warning/warning "$(cat "$mnt/params/loglvl")"
unmount_fuse

# mount(8) itself, as an fstab line runs it (root): mount finds a helper
# through a PATH of its own, so one outside it is named in full, with the
# type fuse and the source PROGRAM#SOURCE, as hypfs-fuse(1) says.
# (The transport is the program's, as everywhere else: once is enough.)
if [ "$(id -u)" = 0 ] && [ "$transport" = socket ] &&
   command -v mount.fuse3 >/dev/null; then
    run_ok mount -t fuse "$HYPFS_FUSE#hypfs" "$mnt" -o "socket=$real_socket"
    check "mount -t fuse PROGRAM#hypfs" warning/warning "$(cat "$mnt/params/loglvl")"
    umount "$mnt" || fail "umount after mount -t fuse"
fi

# -o cache_values: values in the kernel's page cache until they change.
served() { "$HYPFSCTL" stats | awk '$1 == "hypercalls_served" {print $2}'; }
mount_fuse -o cache_values
knob=$mnt/params/sched_credit_tslice_ms
# Every file as in the default mode, read twice (the second from the cache).
while IFS= read -r f; do
    p=${f#"$mnt"}
    case "$p" in /test/types/*blob*) continue ;; esac
    "$XENHYPFS" cat "$p" > "$tmp/expect" || { fail "xenhypfs cat $p"; continue; }
    cmp -s "$tmp/expect" "$f" || fail "cached: content of $p differs from xenhypfs cat"
    cmp -s "$tmp/expect" "$f" || fail "cached: content of $p, read again"
    check "cached: st_size of $p" "$(wc -c < "$tmp/expect")" "$(stat -c %s "$f")"
done < <(find "$mnt" -type f | sort)
cmp "$tmp/bigblob" "$mnt/test/types/blob_big" || fail "cached: a 9000-byte blob"
# An unchanged value is read without asking hypfsd (its count of the
# hypercalls it ran does not move); the fresh mode asks every time.
cat "$knob" >/dev/null
before=$(served)
for _ in $(seq 50); do cat "$knob" >/dev/null; done
after=$(served)
# (At most 3: the kernel may drop a dentry and look it up again.)
[ $((after - before)) -le 3 ] ||
    fail "cached: 50 reads of an unchanged value made $((after - before)) hypercalls"
# A change made elsewhere reaches the mount, same length or not.
"$XENHYPFS" write /params/sched_credit_tslice_ms 20
"$XENHYPFS" write /params/sched_credit_tslice_ms 30
"$XENHYPFS" write /params/loglvl all
seen=
for _ in $(seq 500); do
    seen=$(cat "$knob" "$mnt/params/loglvl" | tr '\n' ' ')
    [ "$seen" = "30 all/all " ] && break
    sleep 0.01
done
check "cached: changes made through hypfsd reach the mount" "30 all/all " "$seen"
# Writes through the mount; their errors, and nothing changed by them.
echo 42 > "$knob" || fail "cached: echo 42 > knob"
check "cached: written, read back by xenhypfs" 42 "$("$XENHYPFS" cat /params/sched_credit_tslice_ms)"
for _ in $(seq 500); do [ "$(cat "$knob")" = 42 ] && break; sleep 0.01; done
check "cached: written, read back through the mount" 42 "$(cat "$knob")"
run_fails 1 bash -c "echo 0 > $knob"
case "$err" in *"Invalid argument"*) ;; *) fail "cached: out-of-range write: $err" ;; esac
run_fails 1 bash -c "echo 1 > $mnt/buildinfo/version/major"
case "$err" in *"Permission denied"*) ;; *) fail "cached: read-only write: $err" ;; esac
check "cached: nothing changed by refused writes" 42 "$(cat "$knob")"
printf '\001\002\003' > "$mnt/test/types/blob" || fail "cached: blob write"
check "cached: blob written raw" "/test/types/blob = <blob, 3 bytes: 010203>" \
    "$("$XENHYPFS" dump /test/types/blob)"
for _ in $(seq 500); do
    [ "$(od -An -tx1 < "$mnt/test/types/blob")" = " 01 02 03" ] && break; sleep 0.01
done
check "cached: blob read back through the mount" " 01 02 03" "$(od -An -tx1 < "$mnt/test/types/blob")"
# Entries that come and go.
"$HYPFSCTL" domain-create cachedom >/dev/null
id=$("$HYPFSCTL" domain-list | awk '$1 == "cachedom" {print $2}')
for _ in $(seq 500); do [ -e "$mnt/domain/$id/name" ] && break; sleep 0.01; done
check "cached: a new domain's name" cachedom "$(cat "$mnt/domain/$id/name")"
"$HYPFSCTL" domain-destroy cachedom >/dev/null
for _ in $(seq 500); do [ -e "$mnt/domain/$id/name" ] || break; sleep 0.01; done
run_fails 1 cat "$mnt/domain/$id/name"
# poll is not offered in this mode: select() says readable, never POLLPRI.
run_ok python3 -c 'import os, select, sys
fd = os.open(sys.argv[1], os.O_RDONLY); p = select.poll(); p.register(fd, select.POLLIN | select.POLLPRI)
print(p.poll(0))' "$knob"
check "cached: poll on a file" "[(3, 1)]" "$out"
unmount_fuse
# With a node hypfsd will not watch (its limit reached), that file is read
# from hypfsd every time instead: never stale, never wrong.
stop_hypfsd
start_hypfsd --test-tree --max-watches 2
mount_fuse -o cache_values
cat "$knob" "$mnt/test/types/u16" "$mnt/test/types/u32" >/dev/null
"$XENHYPFS" write /test/types/u32 7
check "cached, unwatched: a change seen at once" 7 "$(cat "$mnt/test/types/u32")"
"$XENHYPFS" write /test/types/u32 8
check "cached, unwatched: and the next" 8 "$(cat "$mnt/test/types/u32")"
unmount_fuse
# Shared by users who may see different things: refused, with the reason.
if [ "$(id -u)" = 0 ]; then
    run_fails 1 "$HYPFS_FUSE" -f -o allow_other,cache_values "$mnt"
    case "$err" in *"cache_values: with allow_other"*) ;;
        *) fail "cache_values with allow_other: $err" ;; esac
fi
stop_hypfsd
start_hypfsd --test-tree

# Access rights with other users (needs root to be them).
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }
    chmod 755 "$tmp"
    stop_hypfsd
    printf 'map 65534 1\n' > "$tmp/map.conf"
    start_hypfsd --config "$tmp/map.conf"
    "$HYPFSCTL" domain-create guest >/dev/null

    # Without allow_other the mount is the mounting user's alone.
    mount_fuse
    run_fails 2 as 65534 ls "$mnt"
    case "$err" in *"Permission denied"*) ;; *) fail "other user without allow_other: $err" ;; esac
    unmount_fuse SIGTERM

    # With it, every user has exactly their own rights.
    mount_fuse -o allow_other
    run_ok as 65534 ls "$mnt"
    check "domain 1's root through the mount" "buildinfo
domain" "$out"
    run_ok as 65534 ls "$mnt/domain"
    check "domain 1 sees itself only" 1 "$out"
    run_ok as 65534 cat "$mnt/domain/1/name"
    check "its own name" guest "$out"
    run_ok as 65534 stat -c %A "$mnt/domain/1/name"
    check "read-only for it" "-r--r--r--" "$out"
    run_fails 1 as 65534 bash -c "echo x > $mnt/domain/1/name"
    run_fails 1 as 65534 cat "$mnt/params/loglvl"
    case "$err" in *"No such file or directory"*) ;; *) fail "hidden entry: $err" ;; esac
    run_fails 1 as 65534 bash -c "echo all > $mnt/params/loglvl"
    check "loglvl untouched" warning/warning "$("$XENHYPFS" cat /params/loglvl)"
    # Root, the mounting user, still has all its rights meanwhile.
    run_ok cat "$mnt/params/loglvl"
    run_ok stat -c %A "$mnt/params/loglvl"
    check "root may write loglvl" "-rw-r--r--" "$out"
    # A user without any hypfs right gets nothing.
    run_fails 2 as 65533 ls "$mnt"
    case "$err" in *"Permission denied"*) ;; *) fail "unmapped user: $err" ;; esac
    unmount_fuse
else
    echo "note: not root: the allow_other rights checks need other users"
fi

stop_hypfsd
finish
