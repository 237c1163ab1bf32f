#!/usr/bin/env bash
# Real virtual machines as hypfs guests: two Linux guests under QEMU, each
# wired by a virtio-serial port to its own domain's channel in hypfsd,
# read and write hypfs from inside, scripted over their serial consoles.
#
# The kernel is Debian's cloud kernel, unpacked (fetch-kernel.sh); the
# initramfs is built here (busybox-static, xenhypfs, hypfs-fuse and their
# libraries).  TCG unless HYPFS_GUEST_ACCEL=kvm (a nested VM's /dev/kvm
# may exist and still fail to run a guest).  Every wait is bounded, and
# the VMs, hypfsd and the files are removed whatever happens.
set -eu
. "$SOURCE_ROOT/tests/cases/lib.sh"

command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
command -v busybox >/dev/null || skip "no busybox (apt-get install busybox-static)"
kdir=${HYPFS_GUEST_KERNEL:-$SOURCE_ROOT/.cache/guest-kernel}
if ! ls "$kdir"/root/boot/vmlinuz-* >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || skip "no guest kernel in $kdir (run tests/guest/fetch-kernel.sh $kdir as root)"
    "$SOURCE_ROOT/tests/guest/fetch-kernel.sh" "$kdir" || skip "cannot fetch a guest kernel"
fi
kernel=$(ls "$kdir"/root/boot/vmlinuz-* | head -n1)
accel=${HYPFS_GUEST_ACCEL:-tcg}
echo "guests: $(basename "$kernel"), accel $accel"

declare -A qemu_pid reader_pid in_fd
guests=()

guest_cleanup() {
    local status=$? g
    for g in "${guests[@]}"; do
        if [ "$status" -ne 0 ] || [ "$failures" -ne 0 ]; then
            echo "--- guest $g's console (end):" >&2
            tail -n 30 "$tmp/$g.log" "$tmp/$g.qemu.log" >&2 || true
        fi
        kill -KILL "${qemu_pid[$g]}" "${reader_pid[$g]}" 2>/dev/null || true
        wait "${qemu_pid[$g]}" "${reader_pid[$g]}" 2>/dev/null || true
    done
    guests=()
    cleanup
}
trap guest_cleanup EXIT
trap 'exit 143' TERM INT HUP

# Skip only if QEMU cannot start at all (not when a guest misbehaves).
if ! qemu-system-x86_64 -accel "$accel" -machine none -nodefaults \
        -no-user-config -display none -monitor none -S >"$tmp/probe.log" 2>&1 &
then :; fi
probe=$!
sleep 1
if ! kill -0 "$probe" 2>/dev/null; then
    wait "$probe" || true
    skip "qemu-system-x86_64 -accel $accel does not start: $(head -c 300 "$tmp/probe.log")"
fi
kill -KILL "$probe" 2>/dev/null || true
wait "$probe" 2>/dev/null || true

# ---- hypfsd, two domains with channels ----
mkdir -m 700 "$tmp/run"
HYPFSD_SOCKET_PATH=$tmp/run/hypfsd.sock start_hypfsd
host() { HYPFS_SOCKET=$tmp/run/hypfsd.sock "$@"; }
make_domains() {
    run_ok host "$HYPFSCTL" domain-create web --vcpus 2 --channel
    web=$out
    run_ok host "$HYPFSCTL" domain-create db --vcpus 3 --memory 1024 --channel
    db=$out
}
make_domains
run_ok host "$HYPFSCTL" domain-channel web
chan_web=$out
run_ok host "$HYPFSCTL" domain-channel db
chan_db=$out
check "channel path" "$tmp/run/hypfsd.sock.chan.web" "$chan_web"
mode=$(stat -c %a "$chan_web")
check "a channel only hypfsd's user and root may connect to" 600 "$mode"

# ---- the guests ----
# Debian's own xenhypfs too (unmodified; our libxenhypfs.so.1 under it),
# when its package can be fetched.
xen_tool=
. "$SOURCE_ROOT/tests/support/xen-debs.sh"
if xen_debs; then
    cp "$XEN_ROOT/usr/sbin/xenhypfs" "$tmp/debian-xenhypfs"
    xen_tool=$tmp/debian-xenhypfs
    export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$(dirname "$(find "$XEN_ROOT" -name 'libxentoollog.so.1' | head -n1)")
else
    echo "(Debian's xenhypfs could not be fetched: not tried in the guests)"
fi
"$SOURCE_ROOT/tests/guest/mkinitramfs.sh" "$tmp/initrd.cpio" "$kdir/root" \
    "$XENHYPFS" ${HYPFS_FUSE:+"$HYPFS_FUSE"} ${xen_tool:+"$xen_tool"}

start_guest() {
    local g=$1 chan=$2 fd
    mkfifo "$tmp/$g.in" "$tmp/$g.out"
    : >"$tmp/$g.log"
    qemu-system-x86_64 -accel "$accel" -m 256 -smp 1 -nodefaults \
        -no-user-config -display none -no-reboot \
        -kernel "$kernel" -initrd "$tmp/initrd.cpio" \
        -append "console=ttyS0 quiet loglevel=1 panic=-1" \
        -serial "pipe:$tmp/$g" \
        -device virtio-serial-pci \
        -chardev "socket,id=hypfs,path=$chan,reconnect=1" \
        -device virtserialport,chardev=hypfs,name=org.xenproject.hypfs.0 \
        >"$tmp/$g.qemu.log" 2>&1 &
    qemu_pid[$g]=$!
    guests+=("$g")
    cat "$tmp/$g.out" >>"$tmp/$g.log" &
    reader_pid[$g]=$!
    exec {fd}>"$tmp/$g.in"
    in_fd[$g]=$fd
}

# wait_for GUEST PATTERN SECONDS: the guest's console says PATTERN.
wait_for() {
    local i
    for i in $(seq $(($3 * 10))); do
        grep -q -- "$2" "$tmp/$1.log" && return 0
        kill -0 "${qemu_pid[$1]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "guest $1: no '$2' within $3 s; its console:" >&2
    cat "$tmp/$1.log" "$tmp/$1.qemu.log" >&2
    return 1
}

# gsh GUEST SECONDS COMMAND: run a one-line shell command in the guest;
# its output (stdout and stderr) in $out, its exit status in $st.
n=0
gsh() {
    local g=$1 secs=$2 start
    n=$((n + 1))
    start=$(stat -c %s "$tmp/$g.log")
    printf '%s; echo "@@END-%d-$?@@"\n' "$3" "$n" >&"${in_fd[$g]}"
    wait_for "$g" "@@END-$n-[0-9]" "$secs" || { fail "guest $g: '$3' did not finish"; st=timeout; out=; return 0; }
    out=$(tail -c +$((start + 1)) "$tmp/$g.log" | sed -n "/@@END-$n-/q;p")
    st=$(sed -n "s/.*@@END-$n-\([0-9]*\)@@.*/\1/p" "$tmp/$g.log")
}

booted=$(date +%s.%N)
start_guest web "$chan_web"
start_guest db "$chan_db"
wait_for web GUEST-READY 60
wait_for db GUEST-READY 60
# The shell's banner may still be on its way: a first command, unread,
# lets it pass.
gsh web 30 true
gsh db 30 true
gsh web 30 'xenhypfs cat /domain/'"$web"'/name'
ready=$(date +%s.%N)
check "the web guest reads its name" "0 web" "$st $out"
echo "boot of two guests to the first read: $(echo "$ready - $booted" | bc) s"

# ---- what each guest sees ----
for g in web db; do
    id=${!g}
    other=$([ "$g" = web ] && echo "$db" || echo "$web")
    gsh "$g" 30 'xenhypfs ls /'
    check "$g: ls /" "0 <dir>    r- buildinfo
<dir>    r- domain" "$st $out"
    gsh "$g" 30 'xenhypfs ls /domain'
    check "$g: only its own domain in /domain" "0 <dir>    r- $id" "$st $out"
    gsh "$g" 60 'xenhypfs tree'
    case "$out" in
    *"  domain/
    $id/
      cpupool"*) ;;
    *) fail "$g: tree does not show /domain/$id/"; echo "$out" >&2 ;;
    esac
    case "$out" in
    *params*|*cpupool/*|*"    $other/"*) fail "$g: tree shows what is not its own"; echo "$out" >&2 ;;
    esac
    for e in name uuid vcpus memory; do
        run_ok host "$XENHYPFS" cat "/domain/$id/$e"
        want=$out
        gsh "$g" 30 "xenhypfs cat /domain/$id/$e"
        check "$g: /domain/$id/$e as the host sees it" "0 $want" "$st $out"
    done
    gsh "$g" 30 "xenhypfs write /domain/$id/guest-status up-$g"
    check "$g: writes its guest-status" "0 " "$st $out"
    run_ok host "$XENHYPFS" cat "/domain/$id/guest-status"
    check "$g: the host sees the guest's write" "up-$g" "$out"
    grep -q "audit: write /domain/$id/guest-status by domain $id's guest (its channel): \"\" -> \"up-$g\"" "$tmp/hypfsd.log" ||
        fail "$g: the write is not in the audit trail as the guest's"
    gsh "$g" 30 "xenhypfs write /domain/$id/name evil"
    check "$g: may not write its name" "3 could not write: Permission denied" "$st $out"
    gsh "$g" 30 "xenhypfs cat /domain/$other/name"
    check "$g: the other domain is invisible" "3 could not read: No such file or directory" "$st $out"
    gsh "$g" 30 "xenhypfs write /domain/$other/guest-status x"
    check "$g: may not write the other's" "3 could not write: No such file or directory" "$st $out"
    gsh "$g" 30 'xenhypfs cat /params/loglvl'
    check "$g: control-only entries are invisible" "3 could not read: No such file or directory" "$st $out"
done
run_ok host "$XENHYPFS" cat "/domain/$web/name"
check "the host's names are intact" web "$out"

# A watch from inside the guest: the host's write is heard through the
# channel (events carry their CRC too).
# (The host writes until the watcher, which may not be set up yet, hears.)
gsh web 10 "xenhypfs watch --value /domain/$web/guest-status > /tmp/w 2>&1 & echo \$! > /tmp/wp"
heard=0
for i in $(seq 40); do
    run_ok host "$XENHYPFS" write "/domain/$web/guest-status" "from-host-$i"
    gsh web 10 'grep -c from-host /tmp/w'
    [ "$st $out" != "1 0" ] && heard=1 && break
    sleep 0.25
done
check "web: a watch in the guest hears the host's write" "1 0" "$heard $st"
gsh web 10 'kill $(cat /tmp/wp); wait $(cat /tmp/wp); true'

# Xen's own tool, with our library, in a guest: the same bytes as ours.
if [ -n "$xen_tool" ]; then
    gsh web 60 'xenhypfs tree'
    ours=$out
    gsh web 60 'debian-xenhypfs tree'
    check "web: Debian's xenhypfs tree, as ours" "0 $ours" "$st $out"
    gsh web 30 "debian-xenhypfs cat /domain/$web/name"
    check "web: Debian's xenhypfs cat" "0 web" "$st $out"
fi

# The FUSE mount inside a guest: the same view, as files.
if [ -n "${HYPFS_FUSE:-}" ]; then
    gsh web 30 'hypfs-fuse /mnt/hypfs && ls -1 /mnt/hypfs && ls -1 /mnt/hypfs/domain'
    check "web: the FUSE mount's top and /domain" "0 buildinfo
domain
$web" "$st $out"
    gsh web 30 "cat /mnt/hypfs/domain/$web/vcpus && echo via-fuse > /mnt/hypfs/domain/$web/guest-status"
    check "web: reads and writes through FUSE" "0 2" "$st $out"
    run_ok host "$XENHYPFS" cat "/domain/$web/guest-status"
    check "web: the host sees the write through FUSE" "via-fuse" "$out"
    gsh web 30 "cat /mnt/hypfs/domain/$db/name"
    check "web: the other domain is not in the mount" "1 cat: can't open '/mnt/hypfs/domain/$db/name': No such file or directory" "$st $out"
    gsh web 30 'umount /mnt/hypfs'
    check "web: unmounted" "0 " "$st $out"
fi

# The control domain is served while both guests read in a loop.
gsh web 10 '(while :; do xenhypfs cat /domain/'"$web"'/vcpus >/dev/null 2>&1; done) & echo $! > /tmp/loop'
gsh db 10 '(while :; do xenhypfs tree >/dev/null 2>&1; done) & echo $! > /tmp/loop'
bad=0
for i in $(seq 200); do
    v=$(host "$XENHYPFS" cat /domain/$db/vcpus 2>&1) || bad=$((bad + 1))
    [ "$v" = 3 ] || bad=$((bad + 1))
done
check "the control domain's 200 reads during the guests' loops" 0 "$bad"

# ---- real life: a tool killed mid-request, garbage, hypfsd restarting ----
# Kill the loops (and their tools) at whatever point they are.
for g in web db; do
    gsh "$g" 10 'kill -9 $(cat /tmp/loop); killall -9 xenhypfs 2>/dev/null; true'
    gsh "$g" 30 "xenhypfs cat /domain/${!g}/name"
    check "$g: the next request after a killed tool" "0 $g" "$st $out"
done
# What a killed tool leaves at worst: the head of a frame that promises
# more than ever comes, and then noise.
port='$(for p in /sys/class/virtio-ports/*; do grep -q hypfs $p/name && echo /dev/${p##*/}; done)'
gsh web 10 "printf 'HYPF\\001\\000\\001\\000\\377\\377\\000\\000\\001\\000\\000\\000' > $port"
gsh web 30 "xenhypfs cat /domain/$web/name"
check "web: the next request after a partial frame" "0 web" "$st $out"
gsh web 10 "head -c 20000 /dev/urandom > $port"
gsh web 30 "xenhypfs cat /domain/$web/uuid >/dev/null && xenhypfs cat /domain/$web/name"
check "web: the next request after garbage" "0 web" "$st $out"
# One process at a time per port: the second opener is told why.
gsh web 10 "(exec 7<>$port; sleep 3) & sleep 0.5; xenhypfs cat /domain/$web/name"
case "$st $out" in
"2 "*"another process has it open"*) ;;
*) fail "web: a second opener is not told the port is busy"; echo "$st $out" >&2 ;;
esac
gsh web 10 'wait'

# All of that was found again in the stream: the VMMs' connections were
# never dropped for it (QEMU would have reconnected, hiding it).
for g in web db; do
    conns=$(grep -c "domain ${!g}: a\(nother\)\? VMM .* connected to its channel" "$tmp/hypfsd.log" || true)
    check "$g: one VMM connection through all of it" 1 "$conns"
done

# hypfsd restarts; the toolstack creates the domains again; the guests'
# next requests work without anything done inside them.
stop_hypfsd
[ ! -e "$chan_web" ] || fail "a channel left behind after hypfsd stopped"
gsh web 10 "(sleep 1; xenhypfs cat /domain/$web/name > /tmp/after 2>&1; echo \$? >> /tmp/after) & true"
sleep 4     # the guest's request waits for hypfsd meanwhile
HYPFSD_SOCKET_PATH=$tmp/run/hypfsd.sock start_hypfsd
make_domains
gsh web 60 'while ! grep -q "^[0-9]" /tmp/after 2>/dev/null; do sleep 0.2; done; cat /tmp/after'
check "web: a request across hypfsd's restart" "0 web
0" "$st $out"
gsh db 30 "xenhypfs cat /domain/$db/name"
check "db: a request after hypfsd's restart" "0 db" "$st $out"

# ---- the domain goes ----
run_ok host "$HYPFSCTL" domain-destroy db
[ ! -e "$chan_db" ] || fail "the destroyed domain's channel is still there"
gsh db 30 "xenhypfs cat /domain/$db/name"
case "$st $out" in
"2 "*"gives this guest no hypfs right through /dev/vport"*"(its domain is gone)"*) ;;
*) fail "db: after its domain is destroyed: not refused (EPERM)"; echo "$st $out" >&2 ;;
esac
gsh web 30 "xenhypfs cat /domain/$web/name"
check "web: unaffected by the other's end" "0 web" "$st $out"

# ---- made again under the same name: the running VM is the new domain ----
# hypfsd hangs up QEMU's connection to the dead channel; reconnect=1 takes
# it to the new one; the guest's next request starts a new session there.
run_ok host "$HYPFSCTL" domain-create db --vcpus 4 --channel
db2=$out
[ "$db2" != "$db" ] || fail "the new db has the old id"
gsh db 60 "xenhypfs cat /domain/$db2/vcpus"
check "db again: the running VM reads as the new domain" "0 4" "$st $out"
grep -q "of the earlier domain named db is hung up" "$tmp/hypfsd.log" ||
    fail "the old connection was not hung up: $(grep -i vmm "$tmp/hypfsd.log" | tail -3)"

finish
