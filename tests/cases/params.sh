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

# Xen 4.17's grammars (tests/xen checks them against the real hypervisor).
good loglvl debug all/all
good loglvl info/all info/all
good loglvl all/info all/all
good loglvl info/none info/info
good loglvl /all warning/all
good loglvl "" warning/warning
# Refused whole: Xen's own parser leaves "warning/warning" behind.
good loglvl error error/error
refused loglvl loud "Invalid argument"
refused loglvl "info/" "Invalid argument"
refused loglvl "info/loud" "Invalid argument"
refused loglvl "infox" "Invalid argument"
refused loglvl "$(printf 'x%.0s' $(seq 40))" "Invalid argument"
# Xen's parameter size limit (128 with the NUL) is the handler's limit.
refused loglvl "$(printf 'x%.0s' $(seq 128))" "No space left on device"

good guest_loglvl none/all none/all
refused guest_loglvl everything "Invalid argument"

good console_timestamps boot boot
good console_timestamps yes date
good console_timestamps no none
good console_timestamps "" date
refused console_timestamps always "Invalid argument"

good gnttab_max_frames 128 128
good gnttab_max_frames 0x100 256
good gnttab_max_frames 010 8
good gnttab_max_frames 3 3
good gnttab_max_frames "" 0
good gnttab_max_frames 2147483647 2147483647
refused gnttab_max_frames 2147483648 "Numerical result out of range"
refused gnttab_max_frames 18446744073709551616 "Numerical result out of range"
refused gnttab_max_frames -1 "Invalid argument"
refused gnttab_max_frames 12abc "Invalid argument"
refused gnttab_max_frames " 12" "Invalid argument"
refused gnttab_max_frames 08 "Invalid argument"
refused gnttab_max_frames 0x "Invalid argument"

good gnttab_max_maptrack_frames 0 0
refused gnttab_max_maptrack_frames 1e3 "Invalid argument"

good pcid off off
good pcid 1 on
good pcid xpti xpti
good pcid no-xpti noxpti
good pcid xpti=yes xpti
refused pcid noxpti "Invalid argument"
refused pcid xpti=dom0 "Invalid argument"
refused pcid "" "Invalid argument"

# String parameters: any string that fits the buffer, its NUL included.
good conswitch bx bx
good conswitch "" ""
refused conswitch abc "No space left on device"
good crash-debug-panic "0qr" "0qr"
good crash-debug-panic "$(printf 'k%.0s' $(seq 31))" "$(printf 'k%.0s' $(seq 31))"
refused crash-debug-panic "$(printf 'k%.0s' $(seq 32))" "No space left on device"

# EPT not in use: anything is taken and nothing changes, as on Xen.
good ept exec-sp=1 ""
good ept rubbish ""

good global-pages on 1
good global-pages 0 0
refused global-pages maybe "Numerical argument out of domain"

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
