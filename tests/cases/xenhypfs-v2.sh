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
    run_fails 3 "$XENHYPFS" watch /params/loglvl
    check "watch over privcmd: refused, with the reason" \
        "xenhypfs: cannot watch /params/loglvl: Operation not supported (events cannot come through /dev/xen/privcmd: watch through hypfsd's socket)" \
        "$err"
    stop_hypfsd
    finish
    exit
fi

# watch: until SIGINT.
wait_lines() {  # FILE N: up to 10 s for N lines
    local i
    for i in $(seq 1000); do
        [ "$(wc -l < "$1")" -ge "$2" ] && return 0
        sleep 0.01
    done
    return 1
}
# Where each path stands at once (as xenstore-watch fires once), so that
# a script knows the watch is in place; then a line per change.
"$XENHYPFS" watch --value /params/loglvl /domain >"$tmp/watch.out" \
    2>"$tmp/watch.err" &
watcher=$!
wait_lines "$tmp/watch.out" 2 || fail "no lines for where the paths stand"
"$XENHYPFS" write /params/loglvl info/all
wait_lines "$tmp/watch.out" 3 || fail "no line for a write"
"$HYPFSCTL" domain-create db >/dev/null
wait_lines "$tmp/watch.out" 4 || fail "no line for a new domain"
check "watch --value lines" "/params/loglvl = warning/warning
/domain
/params/loglvl = info/all
/domain" "$(cat "$tmp/watch.out")"

# A restart: a note, the watches re-armed, every path once more.
stop_hypfsd
start_hypfsd --test-tree
wait_lines "$tmp/watch.out" 6 || fail "no lines after a restart"
grep -q "reconnected" "$tmp/watch.err" ||
    fail "no note of the restart on stderr: $(cat "$tmp/watch.err")"
"$XENHYPFS" write /params/loglvl info/all
wait_lines "$tmp/watch.out" 7 || fail "no line for a write after a restart"
check "the last line" "/params/loglvl = info/all" "$(tail -1 "$tmp/watch.out")"
kill -INT "$watcher"
status=0
wait "$watcher" || status=$?
check "watch's status on SIGINT" 0 "$status"

# --json: one object per line, values typed as cat --json gives them.
"$XENHYPFS" --json watch --value /params/loglvl /test/types/u8 >"$tmp/json.out" &
watcher=$!
wait_lines "$tmp/json.out" 2 || fail "no JSON lines for where the paths stand"
"$XENHYPFS" write /test/types/u8 7
wait_lines "$tmp/json.out" 3 || fail "no JSON line"
kill -INT "$watcher"
wait "$watcher" || true
python3 -c '
import json,sys
lines = [json.loads(l) for l in sys.stdin]
assert lines[0]["path"] == "/params/loglvl" and lines[0]["generation"] > 0, lines[0]
assert lines[0]["value"] == "info/all", lines[0]
assert lines[2] == {"path": "/test/types/u8", "generation": lines[2]["generation"], "value": 7}, lines[2]
' < "$tmp/json.out" || fail "bad JSON lines: $(cat "$tmp/json.out")"

# -n/--count and --once: that many changes, then exit 0.
"$XENHYPFS" watch --once /params/loglvl >"$tmp/once.out" &
watcher=$!
wait_lines "$tmp/once.out" 1 || fail "--once: no first line"
"$XENHYPFS" write /params/loglvl debug
status=0
for _ in $(seq 1000); do kill -0 "$watcher" 2>/dev/null || break; sleep 0.01; done
kill -0 "$watcher" 2>/dev/null && { kill "$watcher"; fail "--once did not end after a change"; }
wait "$watcher" || status=$?
check "--once: the first line and one change, status 0" "/params/loglvl
/params/loglvl
0" "$(cat "$tmp/once.out"; echo "$status")"
run_fails 1 "$XENHYPFS" watch -n 0 /params/loglvl
run_fails 1 "$XENHYPFS" watch --bogus /params/loglvl
case "$err" in *"unknown option '--bogus'"*) ;; *) fail "watch --bogus: $err" ;; esac

# The reader goes: so does the watch (no change needed to notice).
status=0
timeout 10 "$XENHYPFS" watch /params/loglvl | head -1 >/dev/null || status=$?
check "watch | head -1 ends at once" 0 "$status"

# A path that does not exist yet: said at once, then a line when it
# appears and when it goes; hypfsd holds a watch of the nearest ancestor
# there is, never of a path that is not.
"$XENHYPFS" watch --value /domain/9/name >"$tmp/later.out" &
watcher=$!
wait_lines "$tmp/later.out" 1 || fail "no line for a missing path"
for i in $(seq 20); do
    [ "$("$HYPFSCTL" domain-create "d$i")" = 9 ] && break
done
wait_lines "$tmp/later.out" 2 || fail "no line when the path appeared"
"$HYPFSCTL" domain-destroy 9
wait_lines "$tmp/later.out" 3 || fail "no line when the path went"
kill -INT "$watcher"
wait "$watcher" || true
check "a path watched before it exists" "/domain/9/name: No such file or directory
/domain/9/name = d$i
/domain/9/name: No such file or directory" "$(cat "$tmp/later.out")"
run_ok "$HYPFSCTL" stats
case "$out" in *"
watches 0
"*) ;; *) fail "watches left in hypfsd: $(grep watches <<<"$out")" ;; esac

# A path that cannot be (not absolute): status 3, a reason.
run_fails 3 "$XENHYPFS" watch relative
case $err in
    *"cannot watch relative"*) ;;
    *) fail "watch relative: $err" ;;
esac
stop_hypfsd
finish
