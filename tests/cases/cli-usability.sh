#!/usr/bin/env bash
# xenhypfs beyond Xen's four commands, as an operator uses it daily: usage
# errors before anything is opened, --help/--version/-V anywhere, --json
# anywhere on the line, one exit status per outcome for every command,
# JSON that is valid UTF-8 whatever the entries hold (Python's json reads
# it from bytes), nothing on stdout when a --json command fails, dump one
# line per entry with odd bytes escaped, gzip content inflated
# everywhere, blobs printable.  Xen's four commands are checked against
# Xen's own tool in xen-conformance.sh.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "needs python3 to parse JSON"

json_ok() {  # json_ok NAME: $out is JSON that Python reads from bytes
    printf '%s' "$out" | python3 -c 'import json,sys; json.loads(sys.stdin.buffer.read())' \
        2>"$tmp/py.err" || fail "$1: not valid JSON: $(tail -1 "$tmp/py.err")"
}

# No hypervisor at all: usage errors and --help still work, and say so.
export HYPFS_SOCKET=$tmp/none.sock
run_fails 1 "$XENHYPFS" watch
case "$err" in usage:*) ;; *) fail "watch with no path: $err" ;; esac
run_fails 1 "$XENHYPFS" bogus
run_fails 1 "$XENHYPFS" --json write /params/loglvl x
run_ok "$XENHYPFS" -V
run_ok "$XENHYPFS" ls / --help
run_ok "$XENHYPFS" dump --version
run_fails 2 "$XENHYPFS" cat /params/loglvl
case "$err" in *"$tmp/none.sock"*"Could not open libxenhypfs"*) ;;
    *) fail "no daemon: the socket and the cause are not named: $err" ;; esac

# One convention: every tool's version line is "NAME (hypfs) VERSION".
for tool in "$XENHYPFS" "$HYPFSCTL" "$HYPFSD" ${HYPFS_FUSE:+"$HYPFS_FUSE"} \
            ${HYPFS_EXPORTER:+"$HYPFS_EXPORTER"}; do
    v=$("$tool" --version | head -1)
    case "$v" in "$(basename "$tool") (hypfs) "[0-9]*.[0-9]*.[0-9]*) ;;
        *) fail "$(basename "$tool") --version: '$v'" ;; esac
done
# Before the command: -s/--socket, and an unknown option is named (after
# it, Xen's rules: "cat -x /p" is a usage error, as with Xen's tool).
run_fails 1 "$XENHYPFS" -x ls /
case "$err" in "xenhypfs: unknown option '-x'"*usage:*) ;;
    *) fail "xenhypfs -x: $err" ;; esac
run_fails 1 "$XENHYPFS" --json write /params/loglvl x
case "$err" in "xenhypfs: --json: write prints nothing to format"*) ;;
    *) fail "--json write: $err" ;; esac
run_fails 1 "$XENHYPFS" -s
case "$err" in "xenhypfs: -s needs a socket's path"*) ;;
    *) fail "-s alone: $err" ;; esac

# Every tool: --help and --version, exit 0, wherever they are.
run_ok "$HYPFSCTL" domain-create --help
case "$out" in *"domain-create NAME [--vcpus N]"*) ;; *) fail "hypfsctl domain-create --help: $out" ;; esac
run_ok "$HYPFSCTL" --version
run_ok "$HYPFSCTL" stats -V
run_ok "$HYPFSD" --version
if [ -n "${HYPFS_FUSE:-}" ]; then
    run_ok "$HYPFS_FUSE" --version
    run_ok "$HYPFS_FUSE" --help
fi
run_ok "$SOURCE_ROOT/run" --help
case "$out" in *"./run test"*) ;; *) fail "./run --help: $out" ;; esac
run_fails 1 "$SOURCE_ROOT/run" bogus

start_hypfsd --test-tree
"$HYPFSCTL" domain-create web --channel >/dev/null
# hypfsctl's lists as JSON, read by Python.
run_ok "$HYPFSCTL" domain-list --json
check "domain-list --json" "Domain-0 0 running|web 1 running" \
    "$(printf '%s' "$out" | python3 -c 'import json,sys; print("|".join("%s %d %s" % (d["name"], d["id"], d["state"]) for d in json.load(sys.stdin)))')"
run_ok "$HYPFSCTL" --json pool-list
check "pool-list --json" "Pool-0 0 str" \
    "$(printf '%s' "$out" | python3 -c 'import json,sys; p=json.load(sys.stdin)[0]; print(p["name"], p["id"], type(p["cpus"]).__name__)')"
# xenhypfs: a socket named on the line, as the other tools take it.
run_ok env -u HYPFS_SOCKET "$XENHYPFS" -s "$HYPFS_SOCKET" cat /domain/1/name
check "xenhypfs -s" web "$out"
run_ok env -u HYPFS_SOCKET "$XENHYPFS" --socket="$HYPFS_SOCKET" --json cat /domain/1/name
# hypfsctl's own options after the command, too.
run_ok env -u HYPFS_SOCKET "$HYPFSCTL" domain-list --socket "$HYPFS_SOCKET"

# --json anywhere; valid UTF-8 with odd bytes; exact bytes kept in hex.
run_ok "$XENHYPFS" ls /test --json
json_ok "ls --json (after the command)"
run_ok "$XENHYPFS" --json dump /
json_ok "--json dump /"
run_ok "$XENHYPFS" --json cat /test/types/string_odd
json_ok "--json cat of odd bytes"
check "odd bytes: exact in value_hex" \
    "746162096e6c0a63720d62656c6c07206573631b206869 80ffe920656e64" \
    "$(printf '%s' "$out" | python3 -c 'import json,sys; v=json.loads(sys.stdin.buffer.read())["value_hex"]; print(v[:46], v[46:])')"
run_ok "$XENHYPFS" --json cat /test/types/gzip_blob /test/types/gzip_string
json_ok "--json cat of two paths"
check "gzip content inflated in JSON" \
    "00017f80ff|This string is stored gzip-encoded, as /buildinfo/config is." \
    "$(printf '%s' "$out" | python3 -c 'import json,sys; a=json.loads(sys.stdin.buffer.read()); print(a[0]["value"] + "|" + a[1]["value"].strip())')"
run_ok "$XENHYPFS" --json tree /test/deep
json_ok "--json tree PATH"

# Failure: nothing on stdout, status 3 (as ls and cat), a message naming it.
run_fails 3 "$XENHYPFS" --json dump /nowhere
check "--json dump failing: stdout" "" "$out"
case "$err" in *"/nowhere: No such file or directory"*) ;; *) fail "dump /nowhere: $err" ;; esac
run_fails 3 "$XENHYPFS" dump /nowhere
run_fails 3 "$XENHYPFS" --json cat /params/loglvl /nowhere
check "--json cat with one failing: stdout" "" "$out"
run_fails 3 "$XENHYPFS" ls /nowhere
run_fails 3 "$XENHYPFS" cat /nowhere

# dump: one line per entry, escaped; blobs in hex, inflated.
run_ok "$XENHYPFS" dump /test/types
check "dump lines = entries" "$("$XENHYPFS" ls /test/types | wc -l)" "$(printf '%s\n' "$out" | wc -l)"
printf '%s\n' "$out" | grep -qxF '/test/types/string_odd = tab\tnl\ncr\x0dbell\x07 esc\x1b hi\x80\xff\xe9 end' ||
    fail "dump escapes: $(printf '%s\n' "$out" | grep string_odd)"
printf '%s\n' "$out" | grep -qxF '/test/types/gzip_blob = <blob, 5 bytes: 00017f80ff>' ||
    fail "dump of a gzip blob: $(printf '%s\n' "$out" | grep gzip_blob)"
printf '%s' "$out" | LC_ALL=C grep -q '[[:cntrl:]]' && fail "dump sent a control byte"
run_ok "$XENHYPFS" dump /test/types/blob
check "dump of one blob" "/test/types/blob = <blob, 5 bytes: 00017f80ff>" "$out"


# ls -l: what each entry is and takes (Xen's ls is unchanged).
run_ok "$XENHYPFS" ls -l /params
printf '%s\n' "$out" | grep -qxF '<string> rw plain        5      7 console_timestamps  (none, date, datems, boot, raw (or a boolean: off is none, on is date))' ||
    fail "ls -l: console_timestamps (Xen's max_write_len 7, its words): $out"
printf '%s\n' "$out" | grep -qxE '<bool> +rw plain +1 +1 sync_console' ||
    fail "ls -l: sync_console: $out"
run_ok "$XENHYPFS" ls -l /cpupool/0
printf '%s\n' "$out" | grep -q 'sched-gran  (cpu, core, socket)$' ||
    fail "ls -l: sched-gran's words: $out"
run_ok "$XENHYPFS" ls -l /test/types
printf '%s\n' "$out" | grep -qxE '<string> r- plain +10 +- string_ro' ||
    fail "ls -l: a read-only entry: $out"
printf '%s\n' "$out" | grep -qxE '<string> r- gzip +[0-9]+ +- gzip_string' ||
    fail "ls -l: a gzip entry: $out"
run_fails 3 "$XENHYPFS" ls -l /nowhere

# --explain: messages that say what is allowed, same exit status; without
# it, Xen's own words.
run_fails 3 "$XENHYPFS" write /params/sync_console maybe
check "Xen's message" "could not write: Numerical argument out of domain" "$err"
explain() {  # EXPECTED ARGS...
    local want=$1
    shift
    run_fails 3 "$XENHYPFS" --explain "$@"
    check "--explain $*" "$want" "$err"
}
explain 'xenhypfs: cannot write /params/sync_console: "maybe" is not a boolean (use 0/1, on/off, yes/no, true/false, enable/disable)' \
    write /params/sync_console maybe
explain 'xenhypfs: cannot write /test/types/u8: 300 is out of range: an 8-bit unsigned integer, 0 to 255' \
    write /test/types/u8 300
explain 'xenhypfs: cannot write /test/types/i16: -40000 is out of range: a 16-bit integer, -32768 to 32767' \
    write /test/types/i16 -40000
explain "xenhypfs: cannot write /test/types/string: the value is 3000 bytes, 3001 with its NUL; the entry takes at most 64 (63 characters)" \
    write /test/types/string "$(head -c 3000 /dev/zero | tr '\0' x)"
explain 'xenhypfs: cannot read /test/types/blob: it is a blob of 5 bytes (dump /test/types/blob shows them in hex)' \
    cat /test/types/blob
explain 'xenhypfs: cannot read /params/x: no such entry (or it is hidden from you)' cat /params/x
explain 'xenhypfs: cannot write /params/loglvl: "loud" is not accepted: use LEVEL or LEVEL/RATE-LIMITED-LEVEL, each one of none, error, warning, info, debug, all' \
    write /params/loglvl loud
explain 'xenhypfs: cannot write /test/types/string_ro: it is read-only for you' write /test/types/string_ro x
# The reason comes from the entry, never from the errno alone: a number
# of the right type out of a parameter's documented range, a directory,
# a blob, a pool that has cpus, a path too long to name anything, a
# string that fits only without its NUL.
explain 'xenhypfs: cannot write /params/sched_credit_tslice_ms: 0 is out of range: it takes 1 to 1000' \
    write /params/sched_credit_tslice_ms 0
explain 'xenhypfs: cannot write /params/sched_credit_tslice_ms: "abc" is not an integer (decimal, 0x hex or 0 octal)' \
    write /params/sched_credit_tslice_ms abc
explain 'xenhypfs: cannot write /params/gnttab_max_frames: "99999999999" is out of range: use a number (decimal, 0x hex or 0 octal) up to 2147483647' \
    write /params/gnttab_max_frames 99999999999
explain 'xenhypfs: cannot write /params: it is a directory (only its entries have values)' write /params x
explain 'xenhypfs: cannot write /test/types/blob: it is a blob of 5 bytes (write takes typed values: a blob cannot be written from the command line)' \
    write /test/types/blob abc
explain "xenhypfs: cannot read /$(printf 'a%.0s' $(seq 59))... (5001 bytes): the path is 5001 bytes, 5002 with its NUL; a path takes at most 1024" \
    cat "/$(printf 'a%.0s' $(seq 5000))"
explain "xenhypfs: cannot write /test/types/string: the value is 64 bytes, 65 with its NUL; the entry takes at most 64 (63 characters)" \
    write /test/types/string "$(printf 'x%.0s' $(seq 64))"

# The audit trail: each change once, who, what, before and after; a
# refused write not at the default level.
"$XENHYPFS" write /params/loglvl info/all
"$XENHYPFS" write /test/types/string 'two
lines' || fail "write of a string"
"$XENHYPFS" write /params/loglvl loud 2>/dev/null && fail "a bad loglvl was taken"
"$HYPFSCTL" domain-pause web >/dev/null || fail "domain-pause by name"
run_fails 3 "$HYPFSCTL" domain-unpause nosuch
check "hypfsctl: a missing domain, named" "hypfsctl: domain-unpause: no domain nosuch (No such file or directory)" "$err"
"$HYPFSCTL" domain-list >/dev/null
"$HYPFSCTL" domain-channel web >/dev/null || fail "domain-channel"  # asks, changes nothing
audit=$(grep 'audit:' "$tmp/hypfsd.log" | sed 's/^hypfsd: //')
check "audit lines" "audit: control 'domain-create name=web channel=1' by uid $(id -u)
audit: write /params/loglvl by uid $(id -u) (domain 0): \"warning/warning\" -> \"info/all\"
audit: write /test/types/string by uid $(id -u) (domain 0): \"hello, hypfs\" -> \"two\\x0alines\"
audit: control 'domain-pause id=web' by uid $(id -u)" "$audit"
# hypfsctl: an argument of the wrong form is a usage error (1), said
# before anything is sent, naming the argument; ranges are the daemon's
# (3).  A name of digits alone is refused: every command reads digits as
# an id, so "1" would later name another domain.
bad_arg() {  # bad_arg MESSAGE ARGS...: exit 1 with exactly MESSAGE
    local msg=$1
    shift
    run_fails 1 "$HYPFSCTL" "$@"
    check "hypfsctl $*" "$msg" "$err"
}
bad_arg "hypfsctl: --vcpus 'abc': a number is needed" domain-create db --vcpus abc
bad_arg "hypfsctl: NAME '1': a name of digits alone would read as an id" domain-create 1
bad_arg "hypfsctl: NAME '22': a name of digits alone would read as an id" pool-create 22
bad_arg "hypfsctl: CPU 'abc': a number is needed" cpu-move abc Pool-0
bad_arg "hypfsctl: --uuid '123': a uuid (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) is needed" \
    domain-create x --uuid 123
bad_arg "hypfsctl: --gran 'bad': cpu, core or socket is needed" pool-create p --gran bad
bad_arg "hypfsctl: unknown option --bogus" domain-list --bogus
bad_arg "hypfsctl: unknown option --bogus" domain-list --bogus=1
bad_arg "hypfsctl: missing DOMAIN" domain-pause
run_ok "$HYPFSCTL" domain-list
case "$out" in *"
1 "*|*"
22 "*) fail "a name of digits alone was created: $out" ;; esac
run_fails 3 "$HYPFSCTL" cpu-move 4096 Pool-0
case "$err" in *"a number from 0 to"*"this host has"*) ;;
    *) fail "cpu-move out of range, in the daemon's words: $err" ;; esac
# A name of 63 characters keeps domain-list's columns; bytes a caller
# sent come back escaped, never raw to a terminal.
long=$(printf 'n%.0s' $(seq 63))
"$HYPFSCTL" domain-create "$long" >/dev/null
run_ok "$HYPFSCTL" domain-list
col=$(head -1 <<<"$out" | awk '{print index($0, " ID")}')
while IFS= read -r line; do
    [ "${line:$((col - 1)):1}" = " " ] || fail "domain-list: a column moved: '$line'"
done <<<"$out"
"$HYPFSCTL" domain-destroy "$long" >/dev/null
run_fails 3 "$HYPFSCTL" domain-pause "$(printf 'w\377b')"
check "a raw byte echoed, escaped" 'hypfsctl: domain-pause: no domain w\xffb (No such file or directory)' "$err"
# A command's help: all its lines, options and description.
run_ok "$HYPFSCTL" domain-create --help
case "$out" in *"[--channel]"*"create a domain"*"virtio-serial"*) ;;
    *) fail "domain-create --help is not whole: $out" ;; esac
# stats --json: one object, numbers as numbers.
run_ok "$HYPFSCTL" stats --json
# core_mapped_bytes: the entries hypfsd made are in the core's own blocks.
check "stats --json" "int int True True" \
    "$(printf '%s' "$out" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(type(s["watches"]).__name__, type(s["heap_in_use_bytes"]).__name__, s["domain_create_p99_us"] > 0, s["core_mapped_bytes"] >= 65536)')"

# A pool's granularity while it has cpus: the reason is the pool's cpus.
"$HYPFSCTL" pool-create full >/dev/null
"$HYPFSCTL" cpu-move 1 full
explain 'xenhypfs: cannot write /cpupool/1/sched-gran: the pool has cpus (1): its granularity changes only while it has none' \
    write /cpupool/1/sched-gran core
"$HYPFSCTL" cpu-move 1 Pool-0
"$HYPFSCTL" pool-destroy full
# White space around a number is taken on either side, never alone.
run_ok "$XENHYPFS" write /test/types/u8 " 5"
check "u8 ' 5'" 5 "$("$XENHYPFS" cat /test/types/u8)"
run_ok "$XENHYPFS" write /test/types/i8 "-6 "
check "i8 '-6 '" -6 "$("$XENHYPFS" cat /test/types/i8)"
run_fails 3 "$XENHYPFS" write /test/types/u8 " "
run_fails 3 "$XENHYPFS" write /test/types/u8 "5 x"
finish
