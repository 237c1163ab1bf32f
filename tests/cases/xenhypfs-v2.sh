#!/usr/bin/env bash
# xenhypfs on interface version 2: tree and dump through one subtree read
# print exactly what the version-1 walk prints ($XENHYPFS_V1), text and
# JSON, from the root and from below; "watch" prints a line per change
# (with --value, the value; --json, a JSON object), keeps going through a
# hypfsd restart with a note on stderr, and exits 0 on SIGINT.
. "$(dirname "$0")/lib.sh"
sock=$tmp/hypfsd.sock
export HYPFSD_SOCKET_PATH=$sock
start_hypfsd --test-tree
"$HYPFSCTL" domain-create web >/dev/null
"$HYPFSCTL" pool-create batch >/dev/null

# The same output both ways.
for args in "tree" "dump" "dump /test" "dump /domain/1" "--json tree" \
            "--json dump" "--json dump /buildinfo"; do
    # shellcheck disable=SC2086
    run_ok "$XENHYPFS" $args
    v2=$out
    # shellcheck disable=SC2086
    run_ok env XENHYPFS_V1=1 "$XENHYPFS" $args
    check "xenhypfs $args: one subtree read = the walk" "$out" "$v2"
done
# A leaf dumps as its own line, either way (blobs in hex).
for leaf in /buildinfo/version/major /test/types/gzip_blob /test/types/string_odd; do
    run_ok "$XENHYPFS" dump "$leaf"
    v2=$out
    run_ok env XENHYPFS_V1=1 "$XENHYPFS" dump "$leaf"
    check "dump of the leaf $leaf: the same both ways" "$out" "$v2"
done
run_fails 3 "$XENHYPFS" dump /nowhere
v2_err=$err
run_fails 3 env XENHYPFS_V1=1 "$XENHYPFS" dump /nowhere
check "dump of nothing: the same error" "$err" "$v2_err"

# Over privcmd the hypervisor's events have no way to the tool: watch is
# refused with the reason, and nothing else of this case applies.
if [ "$transport" = privcmd ]; then
    run_fails 2 "$XENHYPFS" watch /params/loglvl
    check "watch over privcmd: refused, with the reason" \
        "xenhypfs: cannot watch /params/loglvl: Operation not supported (events cannot come through /dev/xen/privcmd: watch through hypfsd's socket)" \
        "$err"
    stop_hypfsd
    finish
    exit
fi

# watch: one line per change, until SIGINT.
wait_lines() {  # FILE N: up to 10 s for N lines
    local i
    for i in $(seq 1000); do
        [ "$(wc -l < "$1")" -ge "$2" ] && return 0
        sleep 0.01
    done
    return 1
}
"$XENHYPFS" watch --value /params/loglvl /domain >"$tmp/watch.out" \
    2>"$tmp/watch.err" &
watcher=$!
sleep 0.3
"$XENHYPFS" write /params/loglvl info/all
wait_lines "$tmp/watch.out" 1 || fail "no line for a write"
"$HYPFSCTL" domain-create db >/dev/null
wait_lines "$tmp/watch.out" 2 || fail "no line for a new domain"
check "watch --value lines" "/params/loglvl = info/all
/domain" "$(cat "$tmp/watch.out")"

# A restart: a note, the watches re-armed, every path once more.
stop_hypfsd
start_hypfsd --test-tree
wait_lines "$tmp/watch.out" 4 || fail "no lines after a restart"
grep -q "reconnected" "$tmp/watch.err" ||
    fail "no note of the restart on stderr: $(cat "$tmp/watch.err")"
"$XENHYPFS" write /params/loglvl info/all
wait_lines "$tmp/watch.out" 5 || fail "no line for a write after a restart"
check "the last line" "/params/loglvl = info/all" "$(tail -1 "$tmp/watch.out")"
kill -INT "$watcher"
status=0
wait "$watcher" || status=$?
check "watch's status on SIGINT" 0 "$status"

# --json: one object per line.
"$XENHYPFS" --json watch /params/loglvl >"$tmp/json.out" &
watcher=$!
sleep 0.3
"$XENHYPFS" write /params/loglvl none
wait_lines "$tmp/json.out" 1 || fail "no JSON line"
kill -INT "$watcher"
wait "$watcher" || true
python3 -c 'import json,sys; o=json.loads(sys.stdin.readline()); assert o["path"]=="/params/loglvl" and o["generation"]>0, o' \
    < "$tmp/json.out" || fail "bad JSON line: $(cat "$tmp/json.out")"

# A path that does not exist cannot be watched: status 2, a reason.
run_fails 2 "$XENHYPFS" watch /nope
case $err in
    *"cannot watch /nope"*) ;;
    *) fail "watch /nope: $err" ;;
esac
stop_hypfsd
finish
