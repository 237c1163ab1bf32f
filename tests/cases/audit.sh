#!/usr/bin/env bash
# The audit trail under a flood: a guest writing its own entry as fast as
# it can gets a bounded number of lines, yet the trail loses no change (the
# lines given one by one and the coalesced summaries add up to every write,
# and the last summary ends at the last value); writing the value an entry
# already has is no change; the control domain's changes are each logged;
# another domain's change during the flood is logged on its own; a
# domain's writes are paced.  Needs
# root to run clients as the guests' users.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run clients as other users"
command -v setpriv >/dev/null || skip "needs setpriv (util-linux)"

ONE=65534 TWO=65533
N=300
cat > "$tmp/map.conf" <<CONF
map $ONE 1
map $TWO 2
CONF
start_hypfsd --test-tree --config "$tmp/map.conf"
"$HYPFSCTL" domain-create one >/dev/null
"$HYPFSCTL" domain-create two >/dev/null
x="$tmp/bin/xenhypfs"
as $ONE true      # copies the programs

audit_of() {    # PATH: the audit lines about it
    grep -F "audit: write $1 " "$tmp/hypfsd.log" | sed 's/^hypfsd: //' || true
}

# Domain 1 floods its guest-status, N different values; domain 2 writes
# its own once domain 1 has used its burst.
as $ONE sh -c "i=1; while [ \$i -le $N ]; do
    $x write /domain/1/guest-status v\$i || exit 1
    i=\$((i + 1)); done" &
flood=$!
for i in $(seq 300); do
    [ "$(audit_of /domain/1/guest-status | wc -l)" -ge 10 ] && break
    sleep 0.02
done
as $TWO "$x" write /domain/2/guest-status ready || fail "domain 2's write"
wait $flood || fail "domain 1's writes"

# The summary comes once the burst is over (a second without a change).
for i in $(seq 150); do
    audit_of /domain/1/guest-status | grep -q 'more change' && break
    sleep 0.1
done
lines=$(audit_of /domain/1/guest-status)
single=$(printf '%s\n' "$lines" | grep -c ' -> ' || true)
coalesced=$(printf '%s\n' "$lines" | sed -n 's/.*: \([0-9]*\) more changes\{0,1\} in .*/\1/p' |
            awk '{ s += $1 } END { print s + 0 }')
[ "$single" -ge 1 ] && [ "$single" -le 20 ] ||
    fail "domain 1: $single lines one by one for $N writes (at most 20 expected)"
check "domain 1: every change accounted for" "$N" "$((single + coalesced))"
case $(printf '%s\n' "$lines" | tail -1) in
*" to \"v$N\"") ;;
*) fail "the trail does not end at the last value: $(printf '%s\n' "$lines" | tail -1)" ;;
esac
check "the first change" "audit: write /domain/1/guest-status by uid $ONE (domain 1): \"\" -> \"v1\"" \
    "$(printf '%s\n' "$lines" | head -1)"
check "domain 2's change, on its own" \
    "audit: write /domain/2/guest-status by uid $TWO (domain 2): \"\" -> \"ready\"" \
    "$(audit_of /domain/2/guest-status)"

# The same value again: no change, no line (nor an event).
before=$(grep -c 'audit:' "$tmp/hypfsd.log")
for i in 1 2 3 4 5; do
    as $ONE "$x" write /domain/1/guest-status "v$N" || fail "a rewrite"
    "$XENHYPFS" write /test/types/string "hello, hypfs" || fail "a control rewrite"
done
check "rewrites of the same value" "$before" "$(grep -c 'audit:' "$tmp/hypfsd.log")"

# The control domain: every change on its own line, however many.
for i in $(seq 40); do
    "$XENHYPFS" write /test/types/string "c$i" || fail "control write $i"
done
check "the control domain's changes" 40 "$(audit_of /test/types/string | grep -c ' -> ')"

# A domain's writes are paced (hypfsd(8): 100 at once, then 500 a second):
# four threads writing as fast as they can for 2 s get no further, and
# wait for their turn, not refused.
cp "$HYPFS_ATTACK" "$tmp/bin/" && chmod a+rx "$tmp/bin/hypfs-attack"
SECONDS=0
as $ONE "$tmp/bin/hypfs-attack" "$HYPFS_SOCKET" status 2 4 > "$tmp/paced.out" ||
    fail "the paced writes: $(cat "$tmp/paced.out")"
took=$SECONDS
done_=$(sed -n 's/^status writes: \([0-9]*\) done, \([0-9]*\) failed$/\1 \2/p' "$tmp/paced.out")
read -r writes refused <<< "$done_"
echo "    paced: $writes writes in ${took} s, $refused failed"
check "paced writes refused" 0 "${refused:-x}"
[ "${writes:-0}" -gt 0 ] && [ "$writes" -le $((100 + 500 * (took + 1))) ] ||
    fail "a domain wrote ${writes:-0} times in $took s (at most $((100 + 500 * (took + 1))))"
paced=$("$HYPFSCTL" stats | awk '$1 == "domain_writes_paced" {print $2}')
[ "${paced:-0}" -gt 0 ] || fail "no write was paced"

# What is still waiting is said at exit.
as $ONE sh -c "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    $x write /domain/1/guest-status w\$i; done" || fail "domain 1's second burst"
stop_hypfsd
case $(audit_of /domain/1/guest-status | tail -1) in
*'"w15"') ;;
*) fail "the last change is not in the trail after exit: $(audit_of /domain/1/guest-status | tail -1)" ;;
esac
finish
