# Shared by the integration cases: a private hypfsd per case, and a few
# assertions.  Source it first; it cleans up on exit, whatever happens.
#
#   start_hypfsd [ARGS]     start hypfsd on a socket in $tmp (exported as
#                           HYPFS_SOCKET); extra ARGS go to hypfsd;
#                           $HYPFSD_SOCKET_PATH names another socket and
#                           $HYPFSD_WRAPPER a command to run it under
#                           (prlimit, env LD_PRELOAD=...)
#   stop_hypfsd             SIGTERM; checks exit 0 and the socket removed
#   check NAME EXP GOT      compare two strings
#   run_ok / run_fails N    run a command, expect status 0 / N; output in
#                           $out (stdout) and $err (stderr)
#   skip REASON             exit 77
#   as UID CMD...           run CMD as another user (root only)
#   web_config DIR PASSWORD TLS and basic authentication for the exporter
set -eu

: "${HYPFSD:?set by meson}" "${XENHYPFS:?}" "${HYPFSCTL:?}"
: "${SOURCE_ROOT:?}" "${LIBXENHYPFS_DIR:?}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hypfs-case-XXXXXX")
chmod 755 "$tmp"
hypfsd_pid=
failures=0

# $HYPFS_TEST_TRANSPORT=privcmd (the cases' "-privcmd" variants): the
# clients of libxenhypfs (xenhypfs, hypfs-fuse, hypfs-exporter) reach
# hypfsd through Xen's privcmd device, emulated, instead of its socket:
# every request then takes the path it takes on a real Xen host.
transport=${HYPFS_TEST_TRANSPORT:-socket}
case "$transport" in
socket) ;;
privcmd)
    : "${PRIVCMD_LIB:?}"
    mkdir "$tmp/privcmd-bin"
    via_privcmd() {     # PROGRAM: a wrapper that runs it over privcmd
        local w
        w=$tmp/privcmd-bin/$(basename "$1")
        cat > "$w" <<WRAPPER
#!/bin/sh
LD_PRELOAD="$PRIVCMD_LIB\${LD_PRELOAD:+ \$LD_PRELOAD}" HYPFS_TRANSPORT=privcmd \\
ASAN_OPTIONS="verify_asan_link_order=0\${ASAN_OPTIONS:+:\$ASAN_OPTIONS}" \\
    exec "$1" "\$@"
WRAPPER
        chmod 755 "$w"
        echo "$w"
    }
    XENHYPFS=$(via_privcmd "$XENHYPFS")
    [ -z "${HYPFS_FUSE:-}" ] || HYPFS_FUSE=$(via_privcmd "$HYPFS_FUSE")
    [ -z "${HYPFS_EXPORTER:-}" ] || HYPFS_EXPORTER=$(via_privcmd "$HYPFS_EXPORTER")
    ;;
*) echo "HYPFS_TEST_TRANSPORT=$transport: socket or privcmd" >&2; exit 1 ;;
esac

cleanup() {
    if [ -n "$hypfsd_pid" ] && kill -0 "$hypfsd_pid" 2>/dev/null; then
        kill -KILL "$hypfsd_pid" 2>/dev/null || true
        wait "$hypfsd_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    failures=$((failures + 1))
}

skip() {
    printf 'SKIP: %s\n' "$*"
    exit 77
}

wait_socket() {
    local i
    for i in $(seq 500); do
        if [ -S "$1" ] && "$XENHYPFS" --help >/dev/null 2>&1 &&
           HYPFS_SOCKET=$1 "$XENHYPFS" ls / >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$hypfsd_pid" 2>/dev/null || return 1
        sleep 0.01
    done
    return 1
}

start_hypfsd() {
    export HYPFS_SOCKET=${HYPFSD_SOCKET_PATH:-$tmp/hypfsd.sock}
    # shellcheck disable=SC2086
    ${HYPFSD_WRAPPER:-} "$HYPFSD" --socket "$HYPFS_SOCKET" "$@" 2>>"$tmp/hypfsd.log" &
    hypfsd_pid=$!
    if ! wait_socket "$HYPFS_SOCKET"; then
        cat "$tmp/hypfsd.log" >&2
        echo "hypfsd did not start" >&2
        exit 1
    fi
}

stop_hypfsd() {
    local status=0
    kill -TERM "$hypfsd_pid"
    wait "$hypfsd_pid" || status=$?
    hypfsd_pid=
    check "hypfsd exit status after SIGTERM" 0 "$status"
    [ ! -e "$HYPFS_SOCKET" ] || fail "socket left behind after SIGTERM"
}

check() {
    if [ "$2" != "$3" ]; then
        fail "$1"
        printf -- '--- expected\n%s\n--- got\n%s\n' "$2" "$3" >&2
    fi
}

# run_status N CMD...: run, capture, compare the exit status.
run_status() {
    local want=$1 status=0
    shift
    "$@" >"$tmp/out" 2>"$tmp/err" || status=$?
    out=$(cat "$tmp/out")
    err=$(cat "$tmp/err")
    if [ "$status" != "$want" ]; then
        fail "'$*': exit status $status, expected $want"
        printf 'stdout: %s\nstderr: %s\n' "$out" "$err" >&2
    fi
}

run_ok() { run_status 0 "$@"; }
run_fails() { local n=$1; shift; run_status "$n" "$@"; }

# web_config DIR PASSWORD: DIR/server.crt and .key (self-signed, for
# 127.0.0.1), and DIR/web.yml: hypfs-exporter's --web.config.file with TLS
# and the user alice (PASSWORD, bcrypt-hashed as htpasswd -B does, $2y$).
web_config() {
    local dir=$1 hash
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$dir/server.key" \
        -out "$dir/server.crt" 2>/dev/null || return 1
    hash=$(python3 -W ignore -c 'import crypt, sys
print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)).replace("$2b$", "$2y$"))' "$2") ||
        return 1
    printf 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  alice: %s\n' \
        "$hash" > "$dir/web.yml"
}

# as UID CMD...: run CMD as user UID (root only), with $HYPFS_SOCKET; the
# build's xenhypfs, hypfsctl and libxenhypfs are copied to $tmp/bin, where
# any user can run them (the build tree may not be readable by UID).
as() {
    local uid=$1 f
    shift
    if [ ! -d "$tmp/bin" ]; then
        mkdir -p "$tmp/bin"
        cp "$XENHYPFS" "$HYPFSCTL" "$tmp/bin/"
        for f in "$LIBXENHYPFS_DIR"/libxenhypfs.so*; do
            [ -d "$f" ] || cp -P "$f" "$tmp/bin/"
        done
        chmod -R a+rX "$tmp/bin"
    fi
    setpriv --reuid="$uid" --regid="$uid" --clear-groups \
        env LD_LIBRARY_PATH="$tmp/bin" HYPFS_SOCKET="$HYPFS_SOCKET" "$@"
}

# finish: the case's verdict.
finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$failures check(s) failed"
        exit 1
    fi
    echo "all checks passed"
}
