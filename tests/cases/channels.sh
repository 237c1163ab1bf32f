#!/usr/bin/env bash
# Guests' channels as files: where they are, their modes and group, that
# they go with their domain and with hypfsd, and the errors of making one.
# (What flows through them: tests/daemon/test-hypfsd-channel.c and, with
# real VMs, tests/guest/guest.sh.)
. "$(dirname "$0")/lib.sh"

mkdir -m 700 "$tmp/run"
sock=$tmp/run/hypfsd.sock
group=$(id -gn)
HYPFSD_SOCKET_PATH=$sock start_hypfsd --channel-group "$group"
run_ok "$HYPFSCTL" domain-create web --channel
run_ok "$HYPFSCTL" domain-channel web
check "the channel's path" "$sock.chan.web" "$out"
check "mode and group with --channel-group" "660 $group" "$(stat -c '%a %G' "$sock.chan.web")"
run_ok "$HYPFSCTL" domain-create plain
run_fails 3 "$HYPFSCTL" domain-channel plain
check "a domain without a channel" "hypfsctl: domain-channel: domain 2 has no channel (domain-create --channel) (No such file or directory)" "$err"
# One name, one channel: a second domain of that name is refused whole.
run_fails 3 "$HYPFSCTL" domain-create web --channel
case "$err" in *"in use by domain 1"*) ;; *) fail "a second channel named web: $err" ;; esac
run_ok "$HYPFSCTL" domain-list
case "$out" in *web*web*) fail "a second domain web was made" ;; esac
run_fails 1 "$HYPFSCTL" domain-create x --channel=2
check "--channel takes no value" "hypfsctl: --channel takes no value" "$err"
run_ok "$HYPFSCTL" domain-destroy web
[ ! -e "$sock.chan.web" ] || fail "the channel outlived its domain"
# The name is free again: a new domain web gets a new channel.
run_ok "$HYPFSCTL" domain-create web --channel
[ -S "$sock.chan.web" ] || fail "no channel for the new web"
stop_hypfsd
[ ! -e "$sock.chan.web" ] || fail "a channel left behind after hypfsd stopped"

# Without --channel-group: only hypfsd's user and root.
HYPFSD_SOCKET_PATH=$sock start_hypfsd
run_ok "$HYPFSCTL" domain-create web --channel
check "mode without --channel-group" 600 "$(stat -c '%a' "$sock.chan.web")"
# A second VMM on a domain's channel is said loudly, naming both.
python3 - "$sock.chan.web" <<'PY' || fail "could not connect twice to the channel"
import socket, sys, time
a = socket.socket(socket.AF_UNIX); a.connect(sys.argv[1])
b = socket.socket(socket.AF_UNIX); b.connect(sys.argv[1])
time.sleep(0.2)   # only lets hypfsd accept both before they close
PY
for _ in $(seq 500); do
    grep -q "another VMM" "$tmp/hypfsd.log" && break
    sleep 0.01
done
grep -q "warning: domain 1: another VMM (uid $(id -u) pid [0-9]*) connected to its channel while uid $(id -u) pid [0-9]* is connected" "$tmp/hypfsd.log" ||
    fail "a second VMM on a channel was not said: $(grep VMM "$tmp/hypfsd.log")"

# A hypfsd killed leaves its channels; the next one, cleanly started,
# removes them (nobody serves them, and no domain has them).
kill -KILL "$hypfsd_pid"
wait "$hypfsd_pid" 2>/dev/null || true
hypfsd_pid=
[ -S "$sock.chan.web" ] || fail "expected a channel left by a killed hypfsd"
HYPFSD_SOCKET_PATH=$sock start_hypfsd
[ ! -e "$sock.chan.web" ] || fail "a dead hypfsd's channel survived a clean start"
grep -q "removed $sock.chan.web, left by a hypfsd that did not stop cleanly" "$tmp/hypfsd.log" ||
    fail "the removal was not logged"
stop_hypfsd

# The guest's side, asked for on a host.
run_fails 2 env -u HYPFS_SOCKET HYPFS_TRANSPORT=channel HYPFS_CHANNEL= "$XENHYPFS" ls /
case "$err" in *"no hypfs channel in this machine (no virtio-serial port named org.xenproject.hypfs.0"*) ;;
    *) fail "channel transport on a host: $err" ;; esac
run_fails 2 env HYPFS_TRANSPORT=channel HYPFS_CHANNEL=/dev/null HYPFS_CHANNEL_TIMEOUT=soon "$XENHYPFS" ls /
case "$err" in *"HYPFS_CHANNEL_TIMEOUT=soon: expected seconds, from 1 to 86400"*) ;;
    *) fail "a bad HYPFS_CHANNEL_TIMEOUT: $err" ;; esac

run_fails 1 "$HYPFSD" --socket "$sock" --channel-group no-such-group-here
check "an unknown group" "hypfsd: error: --channel-group: no group 'no-such-group-here'" "$err"
finish
