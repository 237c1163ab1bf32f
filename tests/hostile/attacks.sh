# The attacks of the hostile suite, shared with bench/bench-hostile.
# Source after tests/cases/lib.sh, as root; needs $HYPFS_ATTACK and
# $HYPFS_PROBE.
#
#   ATTACKERS, GUEST        the test users (made here, removed at exit);
#   GUESTS                  GUEST and two more, each its own domain
#   as_user USER CMD...     run as USER, with its own group only
#   start_watched [ARGS]    hypfsd with GUEST mapped to domain attacker-vm
#   launch USER MODE N      one hypfs-attack in the background
#   wait_attackers          wait for every one launched
#   SCENARIOS / scenario_*  each starts an attack and lets it ramp up;
#                           after_* (if any) cleans up once it is over
#   probe MODE              root's requests: "served=... p99_us=..."
#                           (persistent, newconn, or events: root's own
#                           watch, write to event)
#   audit_rate_start / audit_rate_stop
#                           guests' audit lines meanwhile: "max_per_s=..
#                           total=.. seconds=.." (the most in one second,
#                           all of them, in how long)
#   EXPORTER_PORT           scenario_exporter_slow's exporter; its scrapes
#                           on new connections in $tmp/scrapes ("OK TOTAL")
#   sample_rss / sample_stop  the largest VmRSS of hypfsd meanwhile (KiB)

: "${HYPFS_ATTACK:?}" "${HYPFS_PROBE:?}"

ATTACK_S=${HYPFS_HOSTILE_SECONDS:-6}
ATTACKERS="hypfs-hx0 hypfs-hx1 hypfs-hx2 hypfs-hx3 hypfs-hx4 hypfs-hx5 hypfs-hx6 hypfs-hx7"
GUEST=hypfs-hguest
GUESTS="$GUEST hypfs-hguest2 hypfs-hguest3"
made_users=
for u in $ATTACKERS $GUESTS; do
    if ! id "$u" >/dev/null 2>&1; then
        useradd -M -N -s /usr/sbin/nologin "$u" || skip "useradd $u failed"
        made_users="$made_users $u"
    fi
done
daemons=
attackers=
hostile_cleanup() {
    local p
    for p in $attackers $daemons; do kill -KILL "$p" 2>/dev/null || true; done
    # shellcheck disable=SC2086
    [ -z "$made_users" ] || for u in $made_users; do userdel "$u" 2>/dev/null || true; done
    cleanup
}
trap hostile_cleanup EXIT

as_user() {
    local u=$1
    shift
    setpriv --reuid="$u" --regid="$(id -g "$u")" --clear-groups -- "$@"
}

# Every test user may reach the socket's directory.
chmod 755 "$tmp"

conf=$tmp/hypfsd.conf
printf 'map %s name:attacker-vm\nmap hypfs-hguest2 name:attacker-vm2\nmap hypfs-hguest3 name:attacker-vm3\n' \
    "$GUEST" > "$conf"
start_watched() {
    start_hypfsd --config "$conf" "$@"
    daemons="$daemons $hypfsd_pid"
    for d in attacker-vm attacker-vm2 attacker-vm3; do
        "$HYPFSCTL" domain-create "$d" >/dev/null ||
            fail "cannot create the guests' domain $d"
    done
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$hypfsd_pid/status"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$hypfsd_pid/status"; }
fds() { ls "/proc/$hypfsd_pid/fd" | wc -l; }

# The sampler ends when told, or when $tmp goes (the run ended).
sample_rss() {
    rm -f "$tmp/rss.max" "$tmp/rss.stop" "$tmp/rss.done"
    ( max=0
      while [ -d "$tmp" ] && [ ! -e "$tmp/rss.stop" ]; do
          r=$(rss_kib 2>/dev/null || echo 0)
          [ "${r:-0}" -gt "$max" ] && max=$r && echo "$max" > "$tmp/rss.max"
          sleep 0.05
      done
      [ -d "$tmp" ] && touch "$tmp/rss.done" ) &
}
# (Often run in $(...), where wait cannot see the sampler: it says when
# it is done.)
sample_stop() {
    touch "$tmp/rss.stop"
    for _ in $(seq 100); do [ -e "$tmp/rss.done" ] && break; sleep 0.02; done
    cat "$tmp/rss.max" 2>/dev/null || echo 0
}

: > "$tmp/attack.out"
launch() {
    as_user "$1" "$HYPFS_ATTACK" "$HYPFS_SOCKET" "$2" "$ATTACK_S" "$3" \
        >> "$tmp/attack.out" 2>&1 &
    attackers="$attackers $!"
}
wait_attackers() {
    local p
    for p in $attackers; do wait "$p" || true; done
    attackers=
}
# Let the attackers open what they open before root probes.
ramp() { sleep 1; }

# probe MODE: root's requests (persistent: 3000 over one connection;
# newconn: 1000, each on a new one).  Prints the probe's line; fails the
# run if a request was not served.
probe() {
    local args=(--count 3000 --expect warning/warning)
    case $1 in
    newconn) args=(--newconn --count 1000 --expect warning/warning) ;;
    events) args=(--events --count 300) ;;
    esac
    timeout 120 "$HYPFS_PROBE" "${args[@]}" 2>&1
}

# Guests' audit lines (every domain's but the control domain's), counted
# each second by a sampler until audit_rate_stop.
guest_audit_lines() {
    grep 'audit: write' "$tmp/hypfsd.log" | grep -vc '(domain 0)' || true
}
audit_rate_start() {
    rm -f "$tmp/audit.stop" "$tmp/audit.done"
    ( SECONDS=0 first=$(guest_audit_lines) prev=$first max=0
      while [ -d "$tmp" ] && [ ! -e "$tmp/audit.stop" ]; do
          sleep 1
          n=$(guest_audit_lines)
          [ $((n - prev)) -gt "$max" ] && max=$((n - prev))
          prev=$n
      done
      [ -d "$tmp" ] && echo "max_per_s=$max total=$((prev - first)) seconds=$SECONDS" > "$tmp/audit.done" ) &
}
audit_rate_stop() {
    touch "$tmp/audit.stop"
    for _ in $(seq 150); do [ -e "$tmp/audit.done" ] && break; sleep 0.02; done
    cat "$tmp/audit.done" 2>/dev/null || echo "max_per_s=0 total=0"
}

subuids_possible() {
    command -v unshare >/dev/null && command -v newuidmap >/dev/null &&
        grep -q "^hypfs-hx0:" /etc/subuid 2>/dev/null &&
        as_user hypfs-hx0 unshare --user --map-auto --map-root-user true 2>/dev/null
}

SCENARIOS="idle_users idle_subuids stall_users flood writes watches status exporter_slow"
scenario_idle_users_label="8 unmapped users, 32 idle connections each"
scenario_idle_users() {
    local u
    for u in $ATTACKERS; do launch "$u" idle 32; done
    ramp
}
scenario_idle_subuids_label="300 subordinate uids of one user, 32 connections each"
scenario_idle_subuids() {
    as_user hypfs-hx0 unshare --user --map-auto --map-root-user \
        "$HYPFS_ATTACK" "$HYPFS_SOCKET" idle-ids "$ATTACK_S" 300 \
        >> "$tmp/attack.out" 2>&1 &
    attackers="$attackers $!"
    ramp
}
scenario_stall_users_label="largest frames, stalled, from 8 unmapped users and a guest"
scenario_stall_users() {
    local u
    for u in $ATTACKERS; do launch "$u" stall 32; done
    launch "$GUEST" stall 32
    ramp
}
scenario_flood_label="connect flood: 32 threads of one unmapped user"
scenario_flood() { launch hypfs-hx0 flood 32; ramp; }
scenario_writes_label="a guest's refused writes, 16 threads"
scenario_writes() { launch "$GUEST" writes 16; ramp; }
scenario_watches_label="3 guests, 32 connections each, watches until refused"
scenario_watches() {
    local u
    for u in $GUESTS; do launch "$u" watches 32; done
    ramp
}
scenario_status_label="3 guests writing their guest-status, 4 threads each"
scenario_status() {
    local u
    audit_rate_start
    for u in $GUESTS; do launch "$u" status 4; done
    ramp
}
# A second of quiet: every burst's summary is out.
after_status() {
    sleep 2
    audit_rate_stop > "$tmp/audit.rate"
}
scenario_exporter_slow_label="600 slow HTTP clients of an unmapped user on hypfs-exporter"
scenario_exporter_slow() {
    local i ok=0 total=0
    if [ -z "${HYPFS_EXPORTER:-}" ] || ! command -v curl >/dev/null; then
        echo "0 0" > "$tmp/scrapes"
        return 0
    fi
    : > "$tmp/exporter.log"
    "$HYPFS_EXPORTER" --listen 127.0.0.1:0 2>"$tmp/exporter.log" &
    exporter_pid=$!
    daemons="$daemons $exporter_pid"
    for _ in $(seq 200); do
        EXPORTER_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$tmp/exporter.log")
        [ -n "$EXPORTER_PORT" ] && break
        sleep 0.05
    done
    as_user hypfs-hx5 "$HYPFS_ATTACK" "127.0.0.1:$EXPORTER_PORT" http-slow \
        "$ATTACK_S" 600 >> "$tmp/attack.out" 2>&1 &
    attackers="$attackers $!"
    ramp
    for i in $(seq $((ATTACK_S - 2))); do
        total=$((total + 1))
        curl -sf --max-time 3 -o /dev/null "http://127.0.0.1:$EXPORTER_PORT/metrics" &&
            ok=$((ok + 1))
        sleep 0.5
    done
    echo "$ok $total" > "$tmp/scrapes"
}
# Run after the attackers are done.
after_exporter_slow() {
    [ -n "${exporter_pid:-}" ] || return 0
    kill "$exporter_pid" 2>/dev/null || true
    wait "$exporter_pid" 2>/dev/null || true
    exporter_pid=
}
