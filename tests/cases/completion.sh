#!/usr/bin/env bash
# Bash completion as bash runs it (COMP_WORDS, COMP_CWORD, the function
# `complete -p` names): hypfs commands and live paths from hypfsd,
# silent and empty when hypfsd is away, values of parameters; hypfsctl
# verbs, options, and the names and ids of live domains and pools;
# hypfs-fuse, hypfsd and hypfs-exporter options.
. "$(dirname "$0")/lib.sh"
comp=$SOURCE_ROOT/dist/bash-completion
bin=$tmp/bin
mkdir -p "$bin"
ln -s "$HYPFS_CLI" "$bin/hypfs"
ln -s "$HYPFSCTL" "$bin/hypfsctl"

# complete_line LINE: what completing the last word of LINE offers, sorted.
complete_line() {
    env PATH="$bin:$PATH" bash -c '
        for f in "$1"/*; do . "$f"; done
        read -r -a COMP_WORDS <<<"$2"
        case "$2" in *" ") COMP_WORDS+=("") ;; esac
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMP_LINE=$2
        fn=$(complete -p "${COMP_WORDS[0]}" | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
        [ -n "$fn" ] || { echo "no completion for ${COMP_WORDS[0]}" >&2; exit 1; }
        "$fn"
        printf "%s\n" "${COMPREPLY[@]}" | sort' _ "$comp" "$1"
}

# No hypervisor: commands still complete, paths quietly do not.
export HYPFS_SOCKET=$tmp/none.sock
check "hypfs commands" "dump" "$(complete_line "hypfs du")"
run_ok complete_line "hypfs cat /par"
check "no hypervisor: no paths, no noise" "" "$out$err"

start_hypfsd --test-tree
"$HYPFSCTL" domain-create web >/dev/null
"$HYPFSCTL" pool-create batch >/dev/null
check "hypfs top level" "/" "$(complete_line "hypfs ls ")"
check "hypfs below /" "/params/" "$(complete_line "hypfs cat /par")"
check "hypfs live leaves" "/params/gnttab_max_frames
/params/gnttab_max_maptrack_frames" "$(complete_line "hypfs cat /params/gnt")"
check "hypfs live domains" "/domain/0/
/domain/1/" "$(complete_line "hypfs dump /domain/")"
check "hypfs --json first" "ls" "$(complete_line "hypfs --json l")"
check "watch --value" "--value" "$(complete_line "hypfs watch --v")"
check "hypfsctl verbs" "domain-channel
domain-create
domain-destroy
domain-list
domain-pause
domain-unpause" "$(complete_line "hypfsctl domain-")"
check "hypfsctl domains by name and id" "0
1
Domain-0
web" "$(complete_line "hypfsctl domain-pause ")"
check "hypfsctl pools for --pool" "batch" "$(complete_line "hypfsctl domain-create x --pool b")"
check "hypfsctl options" "--memory" "$(complete_line "hypfsctl domain-create x --mem")"
check "hypfs-fuse options" "--socket=" "$(complete_line "hypfs-fuse --so")"
check "hypfs-fuse -o" "cache_values" "$(complete_line "hypfs-fuse -o ca")"
# The options Xen's tool does not have, the socket named on the line,
# values of parameters with known words and of booleans; hypfsd and
# hypfs-exporter complete too.
check "hypfs options first" "--explain" "$(complete_line "hypfs --ex")"
check "ls -l" "-l" "$(complete_line "hypfs ls -")"
check "watch options" "--count
--once
--value
-n" "$(complete_line "hypfs watch -")"
check "loglvl's words" "debug" "$(complete_line "hypfs write /params/loglvl de")"
check "sched-gran's words" "core" "$(complete_line "hypfs write /cpupool/0/sched-gran co")"
check "a boolean's values" "0
1" "$(complete_line "hypfs write /params/sync_console ")"
ln -s "$HYPFSD" "$bin/hypfsd"
check "hypfsd options" "--max-watches" "$(complete_line "hypfsd --max-w")"
check "hypfs-exporter options" "--web.listen-address
--web.telemetry-path" "$(complete_line "hypfs-exporter --web.")"
# -s SOCKET on the line is the socket asked, whatever $HYPFS_SOCKET says.
real=$HYPFS_SOCKET
export HYPFS_SOCKET=$tmp/none.sock
check "hypfs -s SOCKET" "/params/" "$(complete_line "hypfs -s $real cat /par")"
# (bash splits "--socket=PATH" at the "=", as this line is split)
check "hypfs --socket=SOCKET" "/params/" \
    "$(complete_line "hypfs --socket = $real cat /par")"
export HYPFS_SOCKET=$real
finish
