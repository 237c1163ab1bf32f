#!/usr/bin/env bash
# hypfsd's life: start with no configuration, refuse a second instance,
# stop on SIGTERM and SIGINT removing the socket, replace a stale socket,
# refuse bad boot parameters with a clear message, log in syslog form.
. "$(dirname "$0")/lib.sh"

# No configuration needed; boot values from a Xen-style command line.
t0=$(date +%s%N)
start_hypfsd --cmdline 'loglvl=all/info guest_loglvl=debug gnttab_max_frames=0x40 no-sync_console sched_credit_tslice_ms=5 console_timestamps=datems unknown_opt=1 "gnttab_max_maptrack_frames=2048"'
t1=$(date +%s%N)
echo "started and answering in $(( (t1 - t0) / 1000000 )) ms"
# (Read back as Xen shows them: loglvl's both levels, "debug" as "all".)
for pair in loglvl=all/all guest_loglvl=all/all gnttab_max_frames=64 \
            sync_console=0 sched_credit_tslice_ms=5 console_timestamps=datems \
            gnttab_max_maptrack_frames=2048; do
    run_ok "$XENHYPFS" cat "/params/${pair%%=*}"
    check "boot value of ${pair%%=*}" "${pair#*=}" "$out"
done
grep -q "^hypfsd: warning: unknown command line option 'unknown_opt' ignored$" \
    "$tmp/hypfsd.log" || fail "no warning for an unknown boot option"

# A second instance on the same socket is refused; the first goes on.
run_fails 1 "$HYPFSD" --socket "$HYPFS_SOCKET"
case "$err" in
    *"another hypfsd is already serving $HYPFS_SOCKET"*) ;;
    *) fail "second instance: unclear message: $err" ;;
esac
run_ok "$XENHYPFS" cat /params/loglvl
stop_hypfsd

# SIGINT stops it as cleanly.
start_hypfsd
kill -INT "$hypfsd_pid"
status=0
wait "$hypfsd_pid" || status=$?
hypfsd_pid=
check "exit status after SIGINT" 0 "$status"
[ ! -e "$HYPFS_SOCKET" ] || fail "socket left behind after SIGINT"

# A socket left by a crash does not stop the next start.
start_hypfsd
kill -KILL "$hypfsd_pid"
wait "$hypfsd_pid" 2>/dev/null || true
hypfsd_pid=
[ -S "$HYPFS_SOCKET" ] || fail "expected a stale socket after SIGKILL"
start_hypfsd
run_ok "$XENHYPFS" cat /domain/0/name
check "served after a stale socket" "Domain-0" "$out"
stop_hypfsd

# Bad boot parameters: exit 1, a message naming the parameter, no socket.
bad() {
    # A daemon that wrongly starts would serve forever: bound it.
    run_fails 1 timeout 10 "$HYPFSD" --socket "$tmp/bad.sock" --cmdline "$1"
    case "$err" in
        *"bad boot parameter: $2"*) ;;
        *) fail "--cmdline '$1': message '$err' does not say '$2'" ;;
    esac
    [ ! -e "$tmp/bad.sock" ] || fail "--cmdline '$1': a socket was created"
}
bad "gnttab_max_frames=abc" "gnttab_max_frames: invalid value 'abc' (Invalid argument)"
bad "gnttab_max_frames=2147483648" "gnttab_max_frames: invalid value '2147483648' (Numerical result out of range)"
bad "loglvl=loud" "loglvl: invalid value 'loud' (Invalid argument)"
bad "loglvl=all/loud" "loglvl: invalid value 'all/loud' (Invalid argument)"
bad "pcid=noxpti" "pcid: invalid value 'noxpti' (Invalid argument)"
bad "conswitch=abc" "conswitch: 'abc' is longer than its 3 bytes (its NUL included)"
bad "sync_console=maybe" "sync_console: 'maybe' is not a boolean"
bad "sync_console=" "sync_console: '' is not a boolean"
bad 'loglvl="all' "unterminated quote"
bad "sched_credit_tslice_ms=-1" "sched_credit_tslice_ms: '-1' is not a number from 1 to 1000"

# Options.
run_ok "$HYPFSD" --help
case "$out" in *"usage: hypfsd"*) ;; *) fail "--help prints no usage" ;; esac
run_ok "$HYPFSD" --version
run_fails 1 "$HYPFSD" --no-such-option
run_fails 1 "$HYPFSD" --max-clients 0
run_fails 1 "$HYPFSD" --config "$tmp/missing.conf" --socket "$tmp/c.sock"
case "$err" in *"cannot read configuration $tmp/missing.conf"*) ;;
    *) fail "missing config: unclear message: $err" ;; esac

# Every log line is "hypfsd: [warning: |error: ]message" for a person...
if grep -v -E '^hypfsd: ' "$tmp/hypfsd.log"; then
    fail "log lines not in one form"
fi
# ...and "<priority>hypfsd: message" for the journal (its stream on
# stderr, or asked for).
HYPFSD_LOG_PRIORITY=1 "$HYPFSD" --socket "$tmp/j.sock" --cmdline "nope=1" \
    2>"$tmp/journal.log" &
jpid=$!
for _ in $(seq 200); do [ -S "$tmp/j.sock" ] && break; sleep 0.02; done
kill -TERM "$jpid"
wait "$jpid" || fail "hypfsd (journal form) did not stop cleanly"
grep -q '^<4>hypfsd: unknown command line option' "$tmp/journal.log" ||
    fail "no <4> priority prefix for the journal: $(cat "$tmp/journal.log")"
if grep -v -E '^<[0-7]>hypfsd: ' "$tmp/journal.log"; then
    fail "journal lines not in syslog form"
fi
finish
