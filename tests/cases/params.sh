#!/usr/bin/env bash
# Runtime parameters through xenhypfs: each valid value is applied, each
# invalid one refused with the library's errno (status 3, a message) and
# the old value left as it was.
. "$(dirname "$0")/lib.sh"
start_hypfsd

# write PARAM VALUE EXPECTED-AFTER
good() {
    run_ok "$XENHYPFS" write "/params/$1" "$2"
    run_ok "$XENHYPFS" cat "/params/$1"
    check "/params/$1 after writing '$2'" "$3" "$out"
}
# refused PARAM VALUE MESSAGE: status 3, message, value unchanged.
refused() {
    local before
    before=$("$XENHYPFS" cat "/params/$1")
    run_fails 3 "$XENHYPFS" write "/params/$1" "$2"
    check "message for /params/$1 = '$2'" "could not write: $3" "$err"
    run_ok "$XENHYPFS" cat "/params/$1"
    check "/params/$1 unchanged after '$2'" "$before" "$out"
}

good loglvl debug debug
good loglvl all/info all/info
good loglvl warning/warning warning
refused loglvl loud "Invalid argument"
refused loglvl "info/" "Invalid argument"
refused loglvl "" "Invalid argument"
refused loglvl "$(printf 'x%.0s' $(seq 40))" "Invalid argument"
# Xen's parameter size limit (128 with the NUL) is the handler's limit.
refused loglvl "$(printf 'x%.0s' $(seq 128))" "No space left on device"

good guest_loglvl none/all none/all
refused guest_loglvl everything "Invalid argument"

good console_timestamps boot boot
good console_timestamps yes date
good console_timestamps no none
refused console_timestamps always "Invalid argument"

good gnttab_max_frames 128 128
good gnttab_max_frames 0x100 256
good gnttab_max_frames 010 8
refused gnttab_max_frames 3 "Invalid argument"
refused gnttab_max_frames 65537 "Invalid argument"
refused gnttab_max_frames 4294967296 "Numerical result out of range"
refused gnttab_max_frames -1 "Numerical result out of range"
refused gnttab_max_frames 12abc "Invalid argument"
refused gnttab_max_frames "" "Invalid argument"

good gnttab_max_maptrack_frames 0 0
refused gnttab_max_maptrack_frames 2000000 "Invalid argument"

good sched_credit_tslice_ms 1000 1000
good sched_credit_tslice_ms 7 7
refused sched_credit_tslice_ms 0 "Invalid argument"
refused sched_credit_tslice_ms -5 "Invalid argument"
refused sched_credit_tslice_ms 2147483648 "Numerical result out of range"

good sync_console on 1
good sync_console disable 0
good sync_console true 1
good sync_console 0 0
refused sync_console maybe "Numerical argument out of domain"
refused sync_console 2 "Numerical argument out of domain"

# Not parameters: read-only entries and directories.
run_fails 3 "$XENHYPFS" write /buildinfo/changeset x
check "write to a read-only entry" "could not write: Permission denied" "$err"
run_fails 3 "$XENHYPFS" write /params x
check "write to a directory" "could not write: Permission denied" "$err"
run_fails 3 "$XENHYPFS" write /buildinfo/config x
check "write to a read-only gzip entry" "could not write: Permission denied" "$err"
run_fails 3 "$XENHYPFS" write /params/nope x
check "write to a missing entry" "could not write: No such file or directory" "$err"

stop_hypfsd
finish
