#!/usr/bin/env bash
# The hostile suite: hypfsd among hostile local users.  As root it creates
# test users (and, where the kernel allows user namespaces, uses their
# subordinate uids), runs each attack against a real hypfsd for a few
# seconds, and checks, during every attack, that the control domain gets
# every one of its requests answered correctly, over one connection and on
# new connections; that hypfsd's memory stays under a bound; that its
# descriptors and threads come back to where they were; that nothing
# outside the socket's directory is created, removed or changed; that a
# squatter gets nothing from root's tools; that FUSE users recover after a
# restart; and that a control command whose reply was lost is never sent
# again.  SECURITY.md lists each guarantee with its check here.
#
# Run once, in the plain build (meson test --suite hostile): timings and
# memory mean nothing under the sanitizers.
. "$SOURCE_ROOT/tests/cases/lib.sh"
: "${HYPFS_ATTACK:?}" "${HYPFS_PROBE:?}" "${DROP_REPLY_LIB:?}"
: "${PRIVCMD_CLOSER:?}" "${LIB_MEMORY:?}" "${MKDOMAINS:?}" "${PRIVCMD_LIB:?}"

[ "$(id -u)" = 0 ] || skip "needs root: it creates test users and attacks as them"
for c in useradd userdel setpriv prlimit; do
    command -v "$c" >/dev/null || skip "$c is missing"
done

# hypfsd's resident memory must stay under this during every attack.  It
# serves on a few MiB; 256 guests each with a thread and its buffers, and
# what the attacking guests' domains may make it hold (--guest-buffer,
# 4 MiB each, three domains here) at most, fit in 48.
RSS_BOUND_KIB=$((48 * 1024))

. "$SOURCE_ROOT/tests/hostile/attacks.sh"

# back_to NAME WANT: wait (10 s at most) for a count to come back.
back_to() {
    local what=$1 want=$2 got i
    for i in $(seq 200); do
        got=$("$what")
        [ "$got" -le "$want" ] && return 0
        sleep 0.05
    done
    fail "$what did not come back to $want after the attack (now $got)"
}

# probe_root LABEL: root's requests, persistent and on new connections.
probe_root() {
    local label=$1 out
    out=$(probe persistent) || fail "$label: root over one connection: $out"
    echo "    root, one connection:   $out"
    out=$(probe newconn) || fail "$label: root on new connections: $out"
    echo "    root, new connections:  $out"
    out=$(probe events) || fail "$label: root's watch: $out"
    echo "    root's watch, write to event: $out"
}

# attack LABEL CMD...: start the attack, probe root meanwhile, check
# memory, then wait for it to end and check everything came back.
attack() {
    local label=$1 base_fds base_threads peak
    shift
    echo "== $label"
    base_fds=$(fds)
    base_threads=$(threads)
    : > "$tmp/attack.out"
    sample_rss
    "$@"
    probe_root "$label"
    wait_attackers
    if [ "$(type -t "after_${1#scenario_}")" = function ]; then
        "after_${1#scenario_}"
    fi
    peak=$(sample_stop)
    echo "    hypfsd RSS at most ${peak} KiB; attackers said:"
    sed 's/^/      /' "$tmp/attack.out" | sort | uniq -c | sed 's/^/  /'
    [ "$peak" -le "$RSS_BOUND_KIB" ] ||
        fail "$label: hypfsd grew to $peak KiB (bound $RSS_BOUND_KIB)"
    back_to fds "$base_fds"
    back_to threads "$base_threads"
    kill -0 "$hypfsd_pid" || fail "$label: hypfsd died"
}

# stat NAME: one of hypfsctl stats's numbers.
stat() { "$HYPFSCTL" stats | awk -v n="$1" '$1 == n {print $2}'; }

# Watches: each guest stopped at its own domain's budget (not at the count
# of watches), and everything given back once its connections closed.
check_watches() {
    local i
    [ "$(stat domain_budget_refusals)" -gt 0 ] ||
        fail "watches: no guest reached its domain's budget"
    [ "$(stat domain_peak_held_bytes)" -le "$(stat domain_budget_bytes)" ] ||
        fail "watches: a domain held more than its budget"
    for i in $(seq 100); do
        [ "$(stat watches)" = 0 ] && [ "$(stat domains_held_bytes)" = 0 ] && break
        sleep 0.05
    done
    check "watches left after the guests closed" 0 "$(stat watches)"
    check "bytes domains hold after they closed" 0 "$(stat domains_held_bytes)"
}

# The audit trail during the guests' writes: within the documented rate
# (each domain 10 lines at once, then 1 a second), and each guest's last
# value in it.
check_status() {
    local rate total seconds bound path last line
    rate=$(cat "$tmp/audit.rate")
    echo "    guests' audit lines: $rate"
    total=$(sed -n 's/.*total=\([0-9]*\).*/\1/p' <<< "$rate")
    seconds=$(sed -n 's/.*seconds=\([0-9]*\).*/\1/p' <<< "$rate")
    bound=$((3 * (10 + seconds + 1)))
    [ "${total:-0}" -ge 3 ] || fail "status: the guests' writes were not audited"
    [ "${total:-0}" -le "$bound" ] ||
        fail "status: $total audit lines in $seconds s (at most $bound)"
    while read -r path last; do
        line=$(grep -F "audit: write $path " "$tmp/hypfsd.log" | tail -1)
        case $line in
        *"\"$last\"") ;;
        *) fail "status: the trail does not end at $path's last value $last: $line" ;;
        esac
    done < <(sed -n 's/^\(.*\) last value: \(.*\)$/\1 \2/p' "$tmp/attack.out")
    [ "$(grep -c 'last value:' "$tmp/attack.out")" = 3 ] ||
        fail "status: not every guest said its last value"
}

# hypfs-exporter's scrapes on new connections, during slow clients.
check_exporter_slow() {
    local ok total
    read -r ok total < "$tmp/scrapes"
    [ "$total" = 0 ] && { echo "SKIP part: no hypfs-exporter or curl"; return 0; }
    echo "    hypfs-exporter's scrapes on new connections: $ok of $total"
    check "exporter scrapes during slow clients" "$total" "$ok"
}

start_watched

# 1-4. Idle connections of many unmapped users (they could fill
# --max-clients and lock root out), the same from 300 distinct subordinate
# uids of one user, almost-complete frames of the largest size stalled
# (their payload must not be buffered before the caller is known to be
# allowed), a connect flood, and a guest's writes it may not make (refused
# before the writer lock).
for sc in $SCENARIOS; do
    if [ "$sc" = idle_subuids ] && ! subuids_possible; then
        echo "SKIP part: user namespaces with subordinate uids are not available here (uidmap, /etc/subuid, unshare --map-auto)"
        continue
    fi
    label_var=scenario_${sc}_label
    attack "${!label_var}" "scenario_$sc"
    if [ "$(type -t "check_$sc")" = function ]; then
        "check_$sc"
    fi
done

# 5. Running out of descriptors: the accept loop pauses (one log line per
#    episode), spends no CPU meanwhile, and resumes by itself.
echo "== out of descriptors"
open_fds=$(fds)
log_before=$(grep -c "not accepting connections" "$tmp/hypfsd.log" || true)
# The soft limit only: raising it back needs no privilege.
prlimit --pid "$hypfsd_pid" --nofile=$((open_fds + 1)):
cpu0=$(awk '{print $14 + $15}' "/proc/$hypfsd_pid/stat")
launch hypfs-hx1 idle 40
launch hypfs-hx2 flood 8
sleep 3
cpu1=$(awk '{print $14 + $15}' "/proc/$hypfsd_pid/stat")
prlimit --pid "$hypfsd_pid" --nofile=4096:
wait_attackers
log_after=$(grep -c "not accepting connections" "$tmp/hypfsd.log" || true)
echo "    pause log lines: $((log_after - log_before)); hypfsd CPU in 3 s: $((cpu1 - cpu0)) ticks"
[ $((log_after - log_before)) -ge 1 ] || fail "EMFILE: the pause was not logged"
[ $((log_after - log_before)) -le 2 ] || fail "EMFILE: logged $((log_after - log_before)) times"
[ $((cpu1 - cpu0)) -le 100 ] || fail "EMFILE: hypfsd spun ($((cpu1 - cpu0)) ticks in 3 s)"
probe_root "after the descriptors came back"
# The episode ends with the first connection accepted a second after the
# last refusal; root's next tool is that one.
for _ in $(seq 50); do
    "$XENHYPFS" cat /params/loglvl >/dev/null
    grep -q "accepting connections again" "$tmp/hypfsd.log" && break
    sleep 0.1
done
grep -q "accepting connections again" "$tmp/hypfsd.log" ||
    fail "EMFILE: resuming was not logged"

# 5b. Limits above the descriptor limit: fitted at start, control first,
#     so that attackers never reach EMFILE.
stop_hypfsd
echo "== --max-clients above RLIMIT_NOFILE (128)"
log_mark=$(wc -l < "$tmp/hypfsd.log")
HYPFSD_WRAPPER="prlimit --nofile=128:128" start_watched \
    --max-clients 1000 --max-pending 1000
tail -n +$((log_mark + 1)) "$tmp/hypfsd.log" | grep -q "descriptor limit (128) is below" ||
    fail "the fitted limits were not logged"
low_limit() {
    local u
    for u in $ATTACKERS; do launch "$u" idle 32; done
    launch "$GUEST" idle 64
    ramp
}
attack "8 unmapped users and a guest against 128 descriptors" low_limit
tail -n +$((log_mark + 1)) "$tmp/hypfsd.log" |
    grep -q "accept: Too many open files\|not accepting" &&
    fail "--max-clients above the limit: hypfsd ran out of descriptors"
stop_hypfsd
daemons=

# 6. The socket's directory.
echo "== the socket's directory"
shared=$tmp/shared
mkdir -m 1777 "$shared"
outside=$tmp/outside
mkdir -m 755 "$outside"
victim=$outside/victim
printf 'root-owned, 0600\n' > "$victim"
chmod 600 "$victim"
dir_snapshot() { (cd "$outside" && ls -la --time-style=+%s.%N | grep -v ' \.\.$'); }
outside_before=$(dir_snapshot)

refuses() {     # refuses LABEL SOCKET MESSAGE: hypfsd must not start
    local status=0
    "$HYPFSD" --socket "$2" 2>"$tmp/refused.log" & local p=$!
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.02; done
    if kill -0 "$p" 2>/dev/null; then
        kill -KILL "$p"; wait "$p" 2>/dev/null || true
        fail "$1: hypfsd started"
        return
    fi
    wait "$p" || status=$?
    [ "$status" != 0 ] || fail "$1: exit status 0"
    grep -q "$3" "$tmp/refused.log" || {
        fail "$1: unclear message"; cat "$tmp/refused.log" >&2; }
}
as_user hypfs-hx0 ln -s "$outside/created-by-hypfsd" "$shared/a.sock.lock"
refuses "a symlink planted at the lock" "$shared/a.sock" "is not hypfsd's\|not the lock file\|exists and is not"
[ ! -e "$outside/created-by-hypfsd" ] || fail "hypfsd created the symlink's target"
as_user hypfs-hx0 ln -s "$victim" "$shared/b.sock"
refuses "a symlink at the socket's path" "$shared/b.sock" "exists and is not"
as_user hypfs-hx0 sh -c "echo x > '$shared/c.sock'"
refuses "another user's file at the socket's path" "$shared/c.sock" "exists and is not"
[ "$(cat "$shared/c.sock")" = x ] || fail "hypfsd changed another user's file"
mkdir -m 777 "$tmp/open"
refuses "a directory anyone may write, not sticky" "$tmp/open/d.sock" "not sticky"
rmdir "$tmp/open"
# A stale socket of our own, dead: taken over.
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$shared/e.sock"
HYPFSD_SOCKET_PATH=$shared/e.sock start_hypfsd
[ -S "$shared/e.sock" ] || fail "hypfsd did not take over its own stale socket"
stop_hypfsd
[ ! -e "$shared/e.sock.lock" ] || fail "the lock file was left after a clean stop"
check "files outside the socket's directory" "$outside_before" "$(dir_snapshot)"

# 7. A squatter who binds the path first gets nothing from root's tools.
echo "== a squatter"
squat_sock=$shared/squat.sock
as_user hypfs-hx3 "$HYPFS_ATTACK" "$squat_sock" squat 4 > "$tmp/squat.out" 2>&1 &
squatter=$!
for _ in $(seq 100); do grep -q squatting "$tmp/squat.out" && break; sleep 0.02; done
run_fails 2 env HYPFS_SOCKET="$squat_sock" "$XENHYPFS" cat /params/loglvl
case "$err" in *"$squat_sock"*"uid $(id -u hypfs-hx3)"*) ;;
    *) fail "xenhypfs against a squatter: unclear message: $err" ;; esac
[ -z "$out" ] || fail "xenhypfs printed what a squatter said: $out"
run_fails 2 "$HYPFSCTL" -s "$squat_sock" domain-create evil
case "$err" in *"$squat_sock"*"uid $(id -u hypfs-hx3)"*) ;;
    *) fail "hypfsctl against a squatter: unclear message: $err" ;; esac
LD_PRELOAD=$PRIVCMD_LIB HYPFS_SOCKET=$squat_sock "$PRIVCMD_CLOSER" >/dev/null 2>&1 &&
    fail "the privcmd emulation used a squatter's socket"
# hypfsd refuses the squatted path, and leaves nothing of its own there.
refuses "a squatter's socket" "$squat_sock" "exists and is not\|served by another"
[ ! -e "$squat_sock.lock" ] || fail "hypfsd left its lock file beside a squatter's socket"
wait "$squatter" || true
cat "$tmp/squat.out"
grep -q "0 bytes received" "$tmp/squat.out" ||
    fail "the squatter received bytes from root's tools"

# 8. A control command whose reply is lost is never sent again.
echo "== a reply lost after the command was carried out"
HYPFSD_WRAPPER="env LD_PRELOAD=$DROP_REPLY_LIB HYPFS_DROP_CTL_REPLIES=1" \
    start_hypfsd
run_fails 2 "$HYPFSCTL" domain-create web
case "$err" in *"may or may not have been carried out"*) ;;
    *) fail "lost reply: unclear message: $err" ;; esac
run_ok "$HYPFSCTL" domain-list
check "domains named web after a lost reply" 1 "$(echo "$out" | grep -c '^web ')"
check "times hypfsd carried out the command" 1 "$(grep -c '(web) created' "$tmp/hypfsd.log")"
stop_hypfsd

# 9. A tool that closes what is not its own, under the privcmd emulation.
echo "== a tool closing the privcmd emulation's descriptor"
start_hypfsd
run_ok env LD_PRELOAD="$PRIVCMD_LIB" "$PRIVCMD_CLOSER"
echo "    $out"

# 10. A mapping by id is not inherited by a later domain with that id.
echo "== a recycled domain id"
stop_hypfsd
printf 'map %s 3\n' "$GUEST" > "$tmp/byid.conf"
start_hypfsd --config "$tmp/byid.conf"
"$MKDOMAINS" "$HYPFS_SOCKET" 3 vm || fail "cannot create domains"
as_guest() { as_user "$GUEST" env HYPFS_SOCKET="$HYPFS_SOCKET" "$XENHYPFS" "$@"; }
run_ok as_guest cat /domain/3/name
check "the guest's domain" vm2 "$out"
run_ok "$HYPFSCTL" domain-destroy 3
# Round the id space, so that the next domain is number 3 again.
"$MKDOMAINS" "$HYPFS_SOCKET" 32748 --churn || fail "cannot churn domains"
run_ok "$HYPFSCTL" domain-create stranger
check "the recycled id" 3 "$out"
run_fails 2 as_guest cat /domain/3/name
case "$err" in *"no hypfs right"*|*"Operation not permitted"*) ;;
    *) fail "recycled id: the guest was not refused: $err" ;; esac
grep -q "does not inherit it" "$tmp/hypfsd.log" || fail "the ended mapping was not logged"
# A reload binds afresh, by the operator's decision.
kill -HUP "$hypfsd_pid"
for _ in $(seq 100); do grep -q "SIGHUP" "$tmp/hypfsd.log" && break; sleep 0.02; done
sleep 0.1
run_ok as_guest cat /domain/3/name
check "after a reload" stranger "$out"
stop_hypfsd

# 11. The library against a hostile daemon: memory bounded.
echo "== libxenhypfs against a daemon sending the largest replies"
run_ok "$LIB_MEMORY"
echo "$out"

# 12. FUSE with allow_other: every user recovers after a restart, and one
#     user's flood does not stall root.
if [ -e /dev/fuse ] && command -v fusermount3 >/dev/null && [ -n "${HYPFS_FUSE:-}" ]; then
    echo "== FUSE with allow_other"
    mnt=$tmp/mnt
    mkdir -m 755 "$mnt"
    start_watched
    guest_id=$("$HYPFSCTL" domain-list | awk '$1 == "attacker-vm" {print $2}')
    "$HYPFS_FUSE" -f -o allow_other "$mnt" 2>"$tmp/fuse.log" &
    fuse_pid=$!
    for _ in $(seq 200); do mountpoint -q "$mnt" && break; sleep 0.02; done
    mountpoint -q "$mnt" || fail "hypfs-fuse did not mount"
    run_ok as_user "$GUEST" cat "$mnt/domain/$guest_id/name"
    check "the guest through the mount" attacker-vm "$out"
    # Restart hypfsd on the same socket, with the guest's domain again.
    stop_hypfsd
    start_watched
    guest_id=$("$HYPFSCTL" domain-list | awk '$1 == "attacker-vm" {print $2}')
    run_ok as_user "$GUEST" cat "$mnt/domain/$guest_id/name"
    check "the guest through the mount after a restart" attacker-vm "$out"
    run_ok cat "$mnt/params/loglvl"
    check "root through the mount after a restart" warning/warning "$out"
    # Four processes of one user hammer the mount; root is served.
    for _ in 1 2 3 4; do
        as_user "$GUEST" sh -c "end=\$((\$(date +%s) + $ATTACK_S)); while [ \$(date +%s) -lt \$end ]; do cat '$mnt/domain/$guest_id/name' >/dev/null; done" &
        attackers="$attackers $!"
    done
    sleep 0.5
    bad=0
    for _ in $(seq 300); do
        [ "$(cat "$mnt/params/loglvl" 2>/dev/null)" = warning/warning ] || bad=$((bad + 1))
    done
    wait_attackers
    check "root's reads through the mount during a user's flood that failed" 0 "$bad"
    fusermount3 -u "$mnt" || fail "fusermount3 -u failed"
    wait "$fuse_pid" || true
    stop_hypfsd
else
    echo "SKIP part: no FUSE here"
fi

finish
