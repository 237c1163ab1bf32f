#!/usr/bin/env bash
# A tree of over 100,000 entries (14,300 domains of 8 entries each) is
# listed completely by xenhypfs tree and dump: every entry, once, in order;
# the same through one subtree read as through the version-1 walk.
. "$(dirname "$0")/lib.sh"
: "${MKDOMAINS:?}"

start_hypfsd
base=$("$XENHYPFS" tree | wc -l)
n=14300
"$MKDOMAINS" "$HYPFS_SOCKET" $n || fail "could not create $n domains"
run_ok "$XENHYPFS" tree
lines=$(printf '%s\n' "$out" | wc -l)
check "tree lines" $((base + n * 8)) "$lines"
[ "$lines" -gt 100000 ] || fail "only $lines entries"
# Every domain directory (and cpupool 0's), each with its name.
check "numbered directories" $((n + 2)) "$(printf '%s\n' "$out" | grep -c '^    [0-9]*/$')"
check "name leaves" $((n + 2)) "$(printf '%s\n' "$out" | grep -c '^      name$')"
tree_v2=$out
run_ok env XENHYPFS_V1=1 "$XENHYPFS" tree
[ "$out" = "$tree_v2" ] || fail "tree: the subtree read differs from the walk"
run_ok env XENHYPFS_V1=1 "$XENHYPFS" dump /domain
dump_v1=$out
run_ok "$XENHYPFS" dump /domain
[ "$out" = "$dump_v1" ] || fail "dump: the subtree read differs from the walk"
check "dumped values" $(((n + 1) * 7)) "$(printf '%s\n' "$out" | wc -l)"
check "a value deep in the dump" "/domain/14300/name = dom14299" \
    "$(printf '%s\n' "$out" | grep '^/domain/14300/name')"
# Listed byte-wise: "1", "10", "100", ... as the ABI sorts names.
check "listing order" "0 1 10 100 1000 10000 10001" \
    "$("$XENHYPFS" ls /domain | awk '{print $3}' | head -7 | tr '\n' ' ' | sed 's/ $//')"
stop_hypfsd
finish
