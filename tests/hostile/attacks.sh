# The attacks of the hostile suite, shared with bench/bench-hostile.
# Source after tests/cases/lib.sh, as root; needs $HYPFS_ATTACK and
# $HYPFS_PROBE.
#
#   ATTACKERS, GUEST        the test users (made here, removed at exit)
#   as_user USER CMD...     run as USER, with its own group only
#   start_watched [ARGS]    hypfsd with GUEST mapped to domain attacker-vm
#   launch USER MODE N      one hypfs-attack in the background
#   wait_attackers          wait for every one launched
#   SCENARIOS / scenario_*  each starts an attack and lets it ramp up
#   probe MODE              root's requests: "served=... p99_us=..."
#   sample_rss / sample_stop  the largest VmRSS of hypfsd meanwhile (KiB)

: "${HYPFS_ATTACK:?}" "${HYPFS_PROBE:?}"

ATTACK_S=${HYPFS_HOSTILE_SECONDS:-6}
ATTACKERS="hypfs-hx0 hypfs-hx1 hypfs-hx2 hypfs-hx3 hypfs-hx4 hypfs-hx5 hypfs-hx6 hypfs-hx7"
GUEST=hypfs-hguest
made_users=
for u in $ATTACKERS $GUEST; do
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
printf 'map %s name:attacker-vm\n' "$GUEST" > "$conf"
start_watched() {
    start_hypfsd --config "$conf" "$@"
    daemons="$daemons $hypfsd_pid"
    "$HYPFSCTL" domain-create attacker-vm >/dev/null ||
        fail "cannot create the guest's domain"
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
    [ "$1" = persistent ] || args=(--newconn --count 1000 --expect warning/warning)
    timeout 120 "$HYPFS_PROBE" "${args[@]}" 2>&1
}

subuids_possible() {
    command -v unshare >/dev/null && command -v newuidmap >/dev/null &&
        grep -q "^hypfs-hx0:" /etc/subuid 2>/dev/null &&
        as_user hypfs-hx0 unshare --user --map-auto --map-root-user true 2>/dev/null
}

SCENARIOS="idle_users idle_subuids stall_users flood writes"
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
