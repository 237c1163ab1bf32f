#!/usr/bin/env bash
# Dynamic entries: domains and cpupools created and destroyed with hypfsctl
# appear in and vanish from /domain/ and /cpupool/; the sched-gran rule;
# hypfsctl's errors and exit codes.
. "$(dirname "$0")/lib.sh"
start_hypfsd

ctl() { "$HYPFSCTL" "$@"; }

run_ok "$XENHYPFS" ls /domain
check "domains at start" "<dir>    r- 0" "$out"
run_ok "$XENHYPFS" cat /domain/0/name
check "domain 0" "Domain-0" "$out"
run_ok "$XENHYPFS" cat /domain/0/uuid
check "domain 0 uuid" "00000000-0000-0000-0000-000000000000" "$out"
ncpus=$(getconf _NPROCESSORS_ONLN)
run_ok "$XENHYPFS" cat /cpupool/0/cpus
check "pool 0 has every cpu" "$([ "$ncpus" -gt 1 ] && echo "0-$((ncpus - 1))" || echo 0)" "$out"

# Create: the entries appear, with the values asked for.
run_ok ctl domain-create web --vcpus 3 --memory 1024 --uuid 12345678-9abc-def0-1234-56789abcdef0
check "new domain id" 1 "$out"
run_ok "$XENHYPFS" dump /domain/1
check "domain 1's entries" "/domain/1/cpupool = 0
/domain/1/guest-status = 
/domain/1/memory = 1048576
/domain/1/name = web
/domain/1/state = running
/domain/1/uuid = 12345678-9abc-def0-1234-56789abcdef0
/domain/1/vcpus = 3" "$out"
run_ok ctl domain-pause 1
run_ok "$XENHYPFS" cat /domain/1/state
check "paused state is live" paused "$out"
run_ok ctl domain-unpause 1

# Many domains: ids listed byte-wise, as the ABI orders names.
for i in $(seq 2 11); do ctl domain-create "d$i" >/dev/null; done
run_ok "$XENHYPFS" ls /domain
check "listing order" "0 1 10 11 2 3 4 5 6 7 8 9" "$(echo "$out" | awk '{print $3}' | tr '\n' ' ' | sed 's/ $//')"

# Destroy: gone from the listing and from lookups.
run_ok ctl domain-destroy 10
run_fails 3 "$XENHYPFS" cat /domain/10/name
check "destroyed domain" "could not read: No such file or directory" "$err"
run_ok "$XENHYPFS" ls /domain
case "$out" in *" 10"*) fail "domain 10 still listed" ;; esac

# Cpupools, and the sched-gran rule: writable only without cpus.
run_ok ctl pool-create batch --gran core --sched credit
check "new pool id" 1 "$out"
run_ok "$XENHYPFS" dump /cpupool/1
check "pool 1's entries" "/cpupool/1/cpus = 
/cpupool/1/name = batch
/cpupool/1/sched-gran = core
/cpupool/1/scheduler = credit" "$out"
run_ok "$XENHYPFS" write /cpupool/1/sched-gran socket
run_ok "$XENHYPFS" cat /cpupool/1/sched-gran
check "sched-gran of an empty pool" socket "$out"
run_fails 3 "$XENHYPFS" write /cpupool/1/sched-gran thread
check "unknown granularity" "could not write: Invalid argument" "$err"
run_fails 3 "$XENHYPFS" write /cpupool/0/sched-gran core
check "sched-gran of a pool with cpus" "could not write: Device or resource busy" "$err"
run_ok "$XENHYPFS" cat /cpupool/0/sched-gran
check "pool 0 unchanged" cpu "$out"
if [ "$ncpus" -gt 1 ]; then
    run_ok ctl cpu-move 1 1
    run_ok "$XENHYPFS" cat /cpupool/1/cpus
    check "cpu moved in" 1 "$out"
    run_fails 3 "$XENHYPFS" write /cpupool/1/sched-gran cpu
    check "sched-gran once the pool has a cpu" "could not write: Device or resource busy" "$err"
    run_fails 3 ctl pool-destroy 1
    run_ok ctl cpu-move 1 0
fi
run_ok ctl domain-create inpool --pool 1
run_fails 3 ctl pool-destroy 1
case "$err" in *"still has 0 cpus and 1 domains"*) ;; *) fail "pool-destroy busy: $err" ;; esac
run_ok ctl domain-destroy "$("$XENHYPFS" ls /domain | awk '{print $3}' | while read -r id; do [ "$("$XENHYPFS" cat "/domain/$id/name")" = inpool ] && echo "$id"; done)"
run_ok ctl pool-destroy 1
run_fails 3 "$XENHYPFS" ls /cpupool/1
check "destroyed pool" "could not read dir: No such file or directory" "$err"

# hypfsctl's refusals: status 3 and a reason; usage is 1; no daemon is 2.
run_fails 3 ctl domain-destroy 0
case "$err" in *"cannot be destroyed"*) ;; *) fail "destroy dom0: $err" ;; esac
run_fails 3 ctl pool-destroy 0
run_fails 3 ctl domain-create web
case "$err" in *"a domain named 'web' exists (id 1)"*) ;; *) fail "duplicate: $err" ;; esac
run_fails 1 ctl domain-create "bad name"
run_fails 3 ctl domain-create x --vcpus 0
run_fails 1 ctl domain-create x --memory lots
run_fails 3 ctl domain-create x --pool 9
run_fails 1 ctl domain-create x --uuid nonsense
run_fails 3 ctl domain-destroy 99
run_fails 3 ctl cpu-move 4096 0
run_fails 1 ctl domain-create
run_fails 1 ctl domain-create x --colour blue
run_fails 1 ctl frobnicate
run_fails 2 "$HYPFSCTL" -s "$tmp/nothing.sock" domain-list
case "$err" in *"cannot reach hypfsd at $tmp/nothing.sock"*) ;; *) fail "no daemon: $err" ;; esac
stop_hypfsd

# Xen's limit: ids 1 to 32,751, handed out increasing and wrapping round;
# when all are taken a create is refused; a freed id is found again.
: "${MKDOMAINS:?}"
start_hypfsd
"$MKDOMAINS" "$HYPFS_SOCKET" 32751 full- || fail "could not make 32,751 domains"
run_fails 3 ctl domain-create one-too-many
check "every id taken" "hypfsctl: domain-create: no free domain id (No space left on device)" "$err"
for id in 100 5 64 32751; do ctl domain-destroy "$id"; done
got=
for _ in 1 2 3 4; do got="$got $(ctl domain-create "again-$_")"; done
check "freed ids, from past the last one given, wrapping" " 5 64 100 32751" "$got"
run_fails 3 ctl domain-create one-too-many
stop_hypfsd
finish
