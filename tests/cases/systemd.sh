#!/usr/bin/env bash
# systemd integration: the units are valid (systemd-analyze verify), the
# service's sandbox exposure is at most 2.0 (systemd-analyze security),
# hypfsd says READY=1 once clients can connect and STOPPING=1 at a stop
# (Type=notify), and it serves sockets passed to it (socket activation),
# leaving them to their owner when it stops.  Skipped where systemd's
# tools, or libsystemd in this build, are missing.
. "$(dirname "$0")/lib.sh"

command -v systemd-analyze >/dev/null || skip "systemd-analyze is missing"
units=$tmp/units
mkdir "$units"
sed "s|@SBINDIR@|$(dirname "$HYPFSD")|" "$SOURCE_ROOT/dist/hypfsd.service" \
    > "$units/hypfsd.service"
cp "$SOURCE_ROOT/dist/hypfsd.socket" "$SOURCE_ROOT/dist/hypfsd-priv.socket" "$units/"
# hypfsd's ExecStart names the binary "hypfsd" in that directory.
[ "$(basename "$HYPFSD")" = hypfsd ] || skip "\$HYPFSD is not named hypfsd"

run_ok env -C "$units" systemd-analyze verify --man=no hypfsd.service \
    hypfsd.socket hypfsd-priv.socket
[ -z "$err" ] || fail "systemd-analyze verify: $err"

run_ok env -C "$units" systemd-analyze security --offline=yes hypfsd.service
exposure=$(echo "$out" | sed -n 's/.*Overall exposure level for hypfsd.service: \([0-9.]*\).*/\1/p')
echo "exposure: $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }' ||
    fail "sandbox exposure $exposure above 2.0"

# hypfs-exporter's unit too, when it is built.
if [ -n "${HYPFS_EXPORTER:-}" ]; then
    sed "s|@SBINDIR@|$(dirname "$HYPFS_EXPORTER")|" \
        "$SOURCE_ROOT/dist/hypfs-exporter.service" > "$units/hypfs-exporter.service"
    run_ok env -C "$units" systemd-analyze verify --man=no hypfs-exporter.service
    [ -z "$err" ] || fail "systemd-analyze verify hypfs-exporter.service: $err"
    run_ok env -C "$units" systemd-analyze security --offline=yes hypfs-exporter.service
    exposure=$(echo "$out" | sed -n 's/.*Overall exposure level for hypfs-exporter.service: \([0-9.]*\).*/\1/p')
    echo "hypfs-exporter exposure: $exposure"
    awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }' ||
        fail "hypfs-exporter's sandbox exposure $exposure above 2.0"
fi

nm "$HYPFSD" 2>/dev/null | grep -q sd_notify ||
    ldd "$HYPFSD" | grep -q libsystemd ||
    skip "this hypfsd is built without libsystemd"

# Type=notify: READY=1 once the socket answers, STOPPING=1 at SIGTERM.
notify=$tmp/notify
python3 - "$notify" > "$tmp/notified" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
try:
    while True:
        msg = s.recv(4096).decode()
        print(msg.replace("\n", " "), flush=True)
        if "STOPPING=1" in msg:
            break
except socket.timeout:
    pass
PY
listener=$!
for _ in $(seq 100); do [ -S "$notify" ] && break; sleep 0.02; done
NOTIFY_SOCKET=$notify start_hypfsd
for _ in $(seq 100); do grep -q READY=1 "$tmp/notified" && break; sleep 0.02; done
grep -q "READY=1 STATUS=serving $HYPFS_SOCKET" "$tmp/notified" ||
    fail "no READY=1 with the socket in STATUS"
kill -HUP "$hypfsd_pid"
stop_hypfsd
wait "$listener" || true
grep -q "RELOADING=1" "$tmp/notified" || fail "no RELOADING=1 at SIGHUP"
grep -q "STOPPING=1" "$tmp/notified" || fail "no STOPPING=1 at SIGTERM"

# Socket activation: both sockets passed, served, and left to their owner.
if command -v systemd-socket-activate >/dev/null; then
    sock=$tmp/act.sock
    systemd-socket-activate -l "$sock" -l "$sock.priv" \
        "$HYPFSD" --socket "$sock" 2>"$tmp/act.log" &
    act=$!
    for _ in $(seq 100); do [ -S "$sock.priv" ] && break; sleep 0.02; done
    run_ok env HYPFS_SOCKET="$sock" "$XENHYPFS" cat /params/loglvl
    check "served on a passed socket" warning/warning "$out"
    grep -q "sockets from the service manager" "$tmp/act.log" ||
        fail "hypfsd did not say it took passed sockets"
    kill -TERM "$act"
    wait "$act" || true
    [ -S "$sock" ] && [ -S "$sock.priv" ] ||
        fail "hypfsd removed sockets that were not its own"
else
    echo "note: systemd-socket-activate is missing: socket activation not checked"
fi
finish
