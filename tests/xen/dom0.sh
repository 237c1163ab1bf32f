#!/bin/sh
# The real-Xen suite, inside Xen's control domain (tests/xen/xen.sh boots
# Debian's Xen 4.17 under QEMU with this as part of dom0's initramfs).
# Nothing here talks to hypfsd: every call goes through /dev/xen/privcmd
# to the real hypervisor.
#
# Three ways of running Xen's command are compared byte for byte, output,
# errors and exit status:
#   D  Debian's xenhypfs with Debian's libxenhypfs and libxencall
#   B  Debian's xenhypfs with our libxenhypfs
#   O  our xenhypfs with our libxenhypfs
# for tree, ls of every directory, cat and cat -b of every leaf, writes to
# every writable parameter (each read back) and every error.  Then our own
# tools on version 1 (dump, --json, ls -l, watch refused), Xen's xl
# set-parameters with either library, hypfs-exporter and hypfs-fuse.
#
# Results go to /dev/ttyS1 (the second serial port; Xen keeps the first),
# one record per line, for xen.sh:
#   OK name | FAIL name | DIFF line     the comparisons
#   LSL dir|line                        our ls -l of each directory
#   PROBE param|value|status|message|read back
#   TREE line, VAL path|value           what Debian's tool sees
#   JSON line | DUMPJSON line           our --json tree and --json dump /
#   METRICS line                        a scrape of hypfs-exporter
#   END failures=N compared=M
set -u
exec 3>/dev/ttyS1
R() { printf '%s\n' "$*" >&3; }
failures=0
compared=0
fail() { failures=$((failures + 1)); R "FAIL $*"; }
ok() { R "OK $*"; }

D() { LD_LIBRARY_PATH=/deb/lib /deb/xenhypfs "$@"; }
B() { LD_LIBRARY_PATH=/ours/lib:/deb/lib /deb/xenhypfs "$@"; }
O() { LD_LIBRARY_PATH=/ours/lib /ours/xenhypfs "$@"; }

# run V ARGS...: output, errors and status of variant V in /tmp/V.
run() {
    v=$1
    shift
    st=0
    $v "$@" >/tmp/o 2>/tmp/e || st=$?
    { cat /tmp/o; sed 's/^/stderr: /' /tmp/e; echo "status: $st"; } > "/tmp/$v"
}

# The three variants, compared; $restore (if set) is run before each, and
# $after (if set) is appended to each one's output.
restore=
after=
compare() {
    for v in D B O; do
        [ -z "$restore" ] || eval "$restore"
        run "$v" "$@"
        [ -z "$after" ] || eval "$after" >> "/tmp/$v"
    done
    [ -z "$restore" ] || eval "$restore"
    compared=$((compared + 1))
    if cmp -s /tmp/D /tmp/B && cmp -s /tmp/D /tmp/O; then
        return 0
    fi
    fail "xenhypfs $*"
    for v in B O; do
        diff -u /tmp/D "/tmp/$v" | head -20 | sed "s/^/DIFF $v: /" >&3
    done
}

R "BEGIN $(uname -r)"

# ---- Reading: the whole tree, as Debian's tool sees it ----
D tree > /tmp/tree
sed 's/^/TREE /' /tmp/tree >&3
: > /tmp/dirs
: > /tmp/leaves
walk() {        # DIR: its directories and leaves, recursively
    D ls "$1" | while IFS= read -r line; do
        name=$(printf '%s\n' "$line" | cut -c13-)
        path=${1%/}/$name
        case "$line" in
        "<dir>"*) echo "$path" >> /tmp/dirs; walk "$path" ;;
        *) echo "$path" >> /tmp/leaves ;;
        esac
    done
}
echo / >> /tmp/dirs
walk /
[ -s /tmp/leaves ] || fail "no leaves found: the tree is empty"
R "INFO $(wc -l < /tmp/dirs) directories, $(wc -l < /tmp/leaves) leaves"

# Our ls -l of each directory, before anything is written (xen.sh compares
# it with hypfsd's).
while read -r d; do
    O ls -l "$d" | while IFS= read -r line; do R "LSL $d|$line"; done
done < /tmp/dirs

compare tree
while read -r d; do compare ls "$d"; done < /tmp/dirs
while read -r l; do
    compare cat "$l"
    compare cat -b "$l"
    v=$(D cat "$l")
    case "$v" in *"
"*) ;; *) R "VAL $l|$v" ;; esac
done < /tmp/leaves

# ---- Writing: every writable parameter, each value read back ----
l129=$(printf '%0129d' 0)
cases() {       # the values written to PARAM
    case "$1" in
    console_timestamps) echo datems; echo no; echo ""; echo always; echo "$l129" ;;
    conswitch) echo x; echo bx; echo abc; echo "" ;;
    crash-debug-*) echo 0; echo kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
                   echo kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk ;;
    ept) echo exec-sp=1; echo rubbish; echo "$l129" ;;
    global-pages) echo 1; echo off; echo maybe; echo 2 ;;
    gnttab_max_frames) echo 32; echo 0x20; echo ""; echo 2147483648
                       echo 12abc; echo " 12"; echo 18446744073709551616 ;;
    gnttab_max_maptrack_frames) echo 512; echo -1 ;;
    guest_loglvl) echo info/all; echo debug; echo loud ;;
    loglvl) echo all; echo info/none; echo /all; echo warning/; echo loud
            echo "$l129" ;;
    pcid) echo off; echo no-xpti; echo noxpti; echo xpti=dom0 ;;
    *) return 1 ;;
    esac
}
D ls /params > /tmp/params
while IFS= read -r line; do
    case "$line" in *" rw "*) ;; *) continue ;; esac
    p=$(printf '%s\n' "$line" | cut -c13-)
    orig=$(D cat "/params/$p")
    restore='D write "/params/$p" "$orig" >/dev/null 2>&1'
    after='D cat "/params/$p"'
    if ! cases "$p" > /tmp/cases; then
        fail "no write cases for /params/$p (add it to cases in dom0.sh)"
        continue
    fi
    while IFS= read -r v; do compare write "/params/$p" "$v"; done < /tmp/cases
    # The same through our library, for xen.sh to compare with hypfsd.
    while IFS= read -r v; do
        st=0
        msg=$(O write "/params/$p" "$v" 2>&1) || st=$?
        R "PROBE $p|$v|$st|$msg|$(O cat "/params/$p" 2>&1)"
        eval "$restore"
    done < /tmp/cases
done < /tmp/params

# sched-gran: a pool with cpus refuses every valid value (EBUSY), and an
# invalid one first (EINVAL).
gran=$(D cat /cpupool/0/sched-gran)
restore='D write /cpupool/0/sched-gran "$gran" >/dev/null 2>&1'
after='D cat /cpupool/0/sched-gran'
for v in core socket cpu node "" sockets!!; do
    compare write /cpupool/0/sched-gran "$v"
done
restore=
after=

# ---- Errors and usage ----
long=/$(printf '%01100d' 0)
compare write /buildinfo/changeset x
compare write /buildinfo x
compare write /buildinfo/config x
compare write /params x
compare write /nothing 1
compare write /params/nothing 1
compare cat /nothing
compare cat -b /nothing
compare ls /nothing
compare ls /params/loglvl
compare cat /params
compare cat relative
compare cat "$long"
compare cat
compare cat a b c
compare cat -x /params
compare ls
compare write /params/loglvl
compare tree extra
compare frobnicate

# ---- Our extensions on interface version 1 ----
O --json tree | sed 's/^/JSON /' >&3
O --json dump / | sed 's/^/DUMPJSON /' >&3
O dump / > /tmp/dump
cut -d' ' -f1 /tmp/dump | sort > /tmp/dump.paths
sort /tmp/leaves > /tmp/leaves.sorted
if cmp -s /tmp/dump.paths /tmp/leaves.sorted; then
    ok "dump / lists every leaf"
else
    fail "dump / lists other paths than the leaves"
    diff /tmp/leaves.sorted /tmp/dump.paths | head -10 | sed 's/^/DIFF /' >&3
fi
O ls -l /params | grep ' rw ' | grep -v '^<[a-z]*> *rw plain *[0-9]* *[1-9][0-9]* ' |
    sed 's/^/DIFF /' > /tmp/nolimit
if [ -s /tmp/nolimit ]; then
    fail "ls -l: a writable parameter without its write limit"
    cat /tmp/nolimit >&3
else
    ok "ls -l shows every writable parameter's write limit"
fi
st=0
O watch /params/loglvl > /tmp/o 2> /tmp/e || st=$?
if [ "$st" = 3 ] && grep -q "interface version 1" /tmp/e; then
    ok "watch refused on version 1, with the reason"
else
    fail "watch on version 1: status $st, $(cat /tmp/e)"
fi

# ---- Xen's toolstack: xl set-parameters through either library ----
mkdir -p /var/lib/xen /var/run/xen /var/log/xen /etc/xen /var/lib/xenstored \
         /var/run/xenstored
: > /etc/xen/xl.conf
LD_LIBRARY_PATH=/deb/lib /deb/xenstored -N > /tmp/xenstored.log 2>&1 &
i=0
while [ ! -S /var/run/xenstored/socket ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
LD_LIBRARY_PATH=/deb/lib /deb/xen-init-dom0 > /tmp/init-dom0.log 2>&1 ||
    fail "xen-init-dom0: $(cat /tmp/init-dom0.log)"
if LD_LIBRARY_PATH=/deb/lib /deb/xl info > /tmp/xlinfo 2>&1 &&
   grep -q '^xen_minor *: 17' /tmp/xlinfo; then
    ok "xl info"
else
    fail "xl info: $(tail -3 /tmp/xlinfo)"
fi
XD() { LD_LIBRARY_PATH=/deb/lib /deb/xl "$@"; }
XO() { LD_LIBRARY_PATH=/ours/lib:/deb/lib /deb/xl "$@"; }
# xl takes the parameters as one argument, space-separated (libxl's form).
saved=$(for p in loglvl guest_loglvl gnttab_max_frames; do
            printf '%s=%s ' "$p" "$(D cat "/params/$p")"; done)
for args in "loglvl=all" "loglvl=info/warning guest_loglvl=all" \
            "gnttab_max_frames=32" "loglvl=loud" "nosuch=1" \
            "gnttab_max_frames=2147483648"; do
    for v in XD XO; do
        XD set-parameters "$saved" > /dev/null 2>&1
        st=0
        $v set-parameters "$args" > /tmp/o 2> /tmp/e || st=$?
        { cat /tmp/o; sed 's/^/stderr: /' /tmp/e; echo "status: $st"
          for p in loglvl guest_loglvl gnttab_max_frames; do
              echo "$p: $(D cat "/params/$p")"
          done; } > "/tmp/$v"
    done
    compared=$((compared + 1))
    # What each must have done, so that "both did nothing" cannot pass.
    case "$args" in
    loglvl=all) want="loglvl: all/all" ;;
    loglvl=info/warning*) want="guest_loglvl: all/all" ;;
    gnttab_max_frames=32) want="gnttab_max_frames: 32" ;;
    *) want="status: 1" ;;
    esac
    if ! grep -qxF "$want" /tmp/XO; then
        fail "xl set-parameters $args with our library: no '$want'"
        sed 's/^/DIFF /' /tmp/XO >&3
    elif cmp -s /tmp/XD /tmp/XO; then
        ok "xl set-parameters $args"
    else
        fail "xl set-parameters $args differs with our library"
        diff -u /tmp/XD /tmp/XO | head -20 | sed 's/^/DIFF /' >&3
    fi
done
XD set-parameters "$saved" > /dev/null 2>&1
# The one that changes something must have changed it.
XO set-parameters loglvl=error >/dev/null 2>&1
if [ "$(D cat /params/loglvl)" = error/error ]; then
    ok "xl set-parameters through our library changes the parameter"
else
    fail "xl set-parameters loglvl=error through our library: loglvl is $(D cat /params/loglvl)"
fi
XD set-parameters "$saved" > /dev/null 2>&1

# ---- hypfs-exporter, reading the real hypervisor ----
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
LD_LIBRARY_PATH=/ours/lib /ours/hypfs-exporter --listen 127.0.0.1:9155 \
    > /tmp/exporter.log 2>&1 &
exporter=$!
i=0
while ! grep -q "listening on" /tmp/exporter.log && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
if wget -q -O /tmp/metrics http://127.0.0.1:9155/metrics; then
    sed 's/^/METRICS /' /tmp/metrics >&3
else
    fail "hypfs-exporter: no scrape: $(cat /tmp/exporter.log)"
fi
kill "$exporter" 2>/dev/null

# ---- hypfs-fuse, mounted over the real hypervisor ----
mkdir -p /mnt/hypfs
if LD_LIBRARY_PATH=/ours/lib /ours/hypfs-fuse /mnt/hypfs 2> /tmp/fuse.log; then
    i=0
    while [ ! -d /mnt/hypfs/params ] && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if [ "$(cat /mnt/hypfs/params/loglvl)" = "$(D cat /params/loglvl)" ]; then
        ok "hypfs-fuse: a value read"
    else
        fail "hypfs-fuse: /params/loglvl reads '$(cat /mnt/hypfs/params/loglvl)'"
    fi
    if [ "$(ls /mnt/hypfs/params | tr '\n' ' ')" = \
         "$(D ls /params | cut -c13- | tr '\n' ' ')" ]; then
        ok "hypfs-fuse: a directory listed"
    else
        fail "hypfs-fuse: ls /params: $(ls /mnt/hypfs/params | tr '\n' ' ')"
    fi
    orig=$(D cat /params/loglvl)
    if echo info/all > /mnt/hypfs/params/loglvl &&
       [ "$(D cat /params/loglvl)" = info/all ]; then
        ok "hypfs-fuse: a value written, seen by Xen's tool"
    else
        fail "hypfs-fuse: write of loglvl: now $(D cat /params/loglvl)"
    fi
    if echo 12abc > /mnt/hypfs/params/gnttab_max_frames 2> /tmp/e; then
        fail "hypfs-fuse: an invalid value was taken"
    elif grep -q "Invalid argument" /tmp/e &&
         [ "$(D cat /params/gnttab_max_frames)" = 64 ]; then
        ok "hypfs-fuse: an invalid value refused, nothing changed"
    else
        fail "hypfs-fuse: invalid value: $(cat /tmp/e); gnttab_max_frames is now $(D cat /params/gnttab_max_frames)"
    fi
    D write /params/loglvl "$orig"
    umount /mnt/hypfs || fail "hypfs-fuse: umount"
else
    fail "hypfs-fuse: no mount: $(cat /tmp/fuse.log)"
fi
st=0
LD_LIBRARY_PATH=/ours/lib /ours/hypfs-fuse -o allow_other /mnt/hypfs \
    2> /tmp/e || st=$?
if [ "$st" != 0 ] && grep -q "cannot tell users apart" /tmp/e; then
    ok "hypfs-fuse: allow_other refused over privcmd"
else
    fail "hypfs-fuse -o allow_other: status $st, $(cat /tmp/e)"
    umount /mnt/hypfs 2>/dev/null
fi

R "END failures=$failures compared=$compared"
