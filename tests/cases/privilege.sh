#!/usr/bin/env bash
# Callers as the kernel reports them: a client running as an unprivileged
# uid mapped to a domain sees only what that domain may see; an unmapped
# uid, or one mapped to a domain that does not exist, has no hypfs right
# at all (EPERM, so the library cannot open); control commands are the
# control domain's; SIGHUP reloads the mapping.  Needs root to switch uids.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run clients as other users"
command -v setpriv >/dev/null || skip "needs setpriv (util-linux)"

MAPPED=65534 UNMAPPED=65533 GHOST=65532
x="$tmp/bin/xenhypfs"

cat > "$tmp/map.conf" <<CONF
# test mapping
map $MAPPED 1
map $GHOST 7
CONF
start_hypfsd --config "$tmp/map.conf"
"$HYPFSCTL" domain-create guest >/dev/null

# The mapped user is domain 1.
run_ok as $MAPPED "$x" ls /
check "domain 1's root" "<dir>    r- buildinfo
<dir>    r- domain" "$out"
run_ok as $MAPPED "$x" ls /domain
check "domain 1 sees only itself" "<dir>    r- 1" "$out"
run_ok as $MAPPED "$x" cat /domain/1/name
check "its own name" guest "$out"
run_ok as $MAPPED "$x" cat /buildinfo/version/major
run_fails 3 as $MAPPED "$x" cat /domain/0/name
check "another domain's entry" "could not read: No such file or directory" "$err"
run_fails 3 as $MAPPED "$x" cat /params/loglvl
check "a control-only entry" "could not read: No such file or directory" "$err"
run_fails 3 as $MAPPED "$x" ls /cpupool
run_fails 3 as $MAPPED "$x" write /domain/1/name other
check "readable but not writable" "could not write: Permission denied" "$err"
run_fails 3 as $MAPPED "$x" write /params/loglvl all
check "write to an invisible entry" "could not write: No such file or directory" "$err"
run_ok "$XENHYPFS" cat /params/loglvl
check "loglvl untouched" warning/warning "$out"
run_ok as $MAPPED "$x" tree
check "domain 1's whole tree" "/
  buildinfo/
    changeset
    compileinfo/
      compile_by
      compile_date
      compile_domain
      compiler
    config
    version/
      extra
      major
      minor
  domain/
    1/
      cpupool
      guest-status
      memory
      name
      state
      uuid
      vcpus" "$out"
# The one entry a domain may write: its own guest-status, no other's.
run_ok as $MAPPED "$x" write /domain/1/guest-status ready
run_ok "$XENHYPFS" cat /domain/1/guest-status
check "a domain writes its own guest-status" ready "$out"
run_fails 3 as $MAPPED "$x" write /domain/0/guest-status ready
check "nor another domain's" "could not write: No such file or directory" "$err"
run_fails 2 as $MAPPED "$tmp/bin/hypfsctl" domain-list
case "$err" in *"control commands are for the control domain only"*) ;;
    *) fail "hypfsctl as a domain: $err" ;; esac

# Xen's own tool and libraries through the privcmd emulation, as this user
# and with no lockable memory at all (libxencall locks its buffers).
. "$SOURCE_ROOT/tests/support/xen-debs.sh"
if [ "${SANITIZE:-none}" = none ] && xen_debs; then
    cp -P "$PRIVCMD_LIB" "$tmp/bin/"
    xl=$(dirname "$(find "$XEN_ROOT" -name 'libxencall.so.1' | head -1)")
    cp -a "$xl" "$tmp/xenlib"
    cp "$XEN_ROOT/usr/sbin/xenhypfs" "$tmp/bin/xen-xenhypfs"
    chmod -R a+rX "$tmp/xenlib" "$tmp/bin"
    run_ok as $MAPPED sh -c "ulimit -l 0 && LD_PRELOAD=$tmp/bin/$(basename "$PRIVCMD_LIB") \
        LD_LIBRARY_PATH=$tmp/xenlib $tmp/bin/xen-xenhypfs ls /domain"
    check "Xen's xenhypfs as domain 1, no lockable memory" "<dir>    r- 1" "$out"
else
    echo "note: Xen's packages unavailable (or a sanitizer build): the"
    echo "      privcmd emulation as an unprivileged user is not checked here"
fi

# Unmapped, and mapped to a domain that does not exist: no right at all.
no_right="xenhypfs: error: the hypervisor gives this caller no hypfs right (not mapped to a live domain)
Could not open libxenhypfs"
run_fails 2 as $UNMAPPED "$x" ls /
check "unmapped user" "$no_right" "$err"
run_fails 2 as $GHOST "$x" ls /
check "user of a missing domain" "$no_right" "$err"
run_fails 3 as $UNMAPPED "$tmp/bin/hypfsctl" domain-list

# SIGHUP: the new mapping takes effect for the next request.
echo "map $UNMAPPED 1" >> "$tmp/map.conf"
kill -HUP "$hypfsd_pid"
for i in $(seq 100); do
    as $UNMAPPED "$x" ls /domain >/dev/null 2>&1 && break
    sleep 0.05
done
run_ok as $UNMAPPED "$x" ls /domain
check "remapped user" "<dir>    r- 1" "$out"
# A broken file keeps the old mapping.
echo "map nosuchuser 3" >> "$tmp/map.conf"
kill -HUP "$hypfsd_pid"
sleep 0.2
run_ok as $UNMAPPED "$x" ls /domain
grep -q "unknown user 'nosuchuser'" "$tmp/hypfsd.log" || fail "bad config not reported"

# A domain that is destroyed loses its rights with it.
"$HYPFSCTL" domain-destroy 1
run_fails 2 as $MAPPED "$x" ls /
check "user of a destroyed domain" "$no_right" "$err"

stop_hypfsd
finish
