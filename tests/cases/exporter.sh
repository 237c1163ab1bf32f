#!/usr/bin/env bash
# hypfs-exporter without Prometheus: the mapping (labels for instances,
# units, _info for strings, CRC-32 for gzip content, hypfs_build_info),
# `promtool check metrics` on every kind of entry of --test-tree, valid
# UTF-8 whatever the entries hold, OpenMetrics when asked, gzip when asked,
# the same output from the v1 walk as from one subtree read, --include and
# --exclude, the rights of the user it runs as, hypfs_up 0 (and still
# serving) while hypfsd is down, and HTTP clients that misbehave.
. "$(dirname "$0")/lib.sh"
: "${HYPFS_EXPORTER:?}"
command -v curl >/dev/null || fail "curl is missing (Debian: curl; ./run deps)"
command -v promtool >/dev/null ||
    fail "promtool is missing (Debian: prometheus; ./run deps)"
[ "$failures" = 0 ] || finish

exporters=()
trap 'for p in "${exporters[@]}"; do kill "$p" 2>/dev/null || true; done; cleanup' EXIT

# start_exporter [ENV=V...] -- ARGS...: sets $port (and $exporter_pid).
start_exporter() {
    local envs=() log=$tmp/exporter.$RANDOM.log i
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    # The log exists before the exporter does: read too early, it is
    # empty, not missing (sed's error would end the test under set -e).
    : >"$log"
    env "${envs[@]}" "$HYPFS_EXPORTER" --listen 127.0.0.1:0 "$@" 2>"$log" &
    exporter_pid=$!
    exporters+=("$exporter_pid")
    port=
    for i in $(seq 500); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$log")
        [ -n "$port" ] && return 0
        kill -0 "$exporter_pid" 2>/dev/null || break
        sleep 0.01
    done
    cat "$log" >&2
    fail "hypfs-exporter did not start"
    finish
}
scrape() {  # scrape [CURL ARGS...]: the text, without the run's duration
    curl -sf --max-time 30 "$@" "http://127.0.0.1:$port/metrics" |
        grep -v '^hypfs_scrape_duration_seconds '
}

start_hypfsd --test-tree
"$HYPFSCTL" domain-create web --vcpus 3 --memory 512 >/dev/null
"$HYPFSCTL" pool-create batch >/dev/null
start_exporter --
m=$(scrape)

# The mapping.
expect_line() {
    grep -qxF -- "$2" <<<"$m" || fail "$1: no line '$2'"
}
expect_line "a domain's number, labelled" 'hypfs_domain_vcpus{domain="1",name="web"} 3'
expect_line "memory in bytes" 'hypfs_domain_memory_bytes{domain="1",name="web"} 536870912'
expect_line "a string: _info" 'hypfs_domain_state_info{domain="1",name="web",value="running"} 1'
expect_line "a pool" 'hypfs_cpupool_sched_gran_info{cpupool="1",name="batch",value="cpu"} 1'
expect_line "a parameter" 'hypfs_params_global_pages 0'
expect_line "a number Xen shows as a string" 'hypfs_params_gnttab_max_frames_info{value="64"} 1'
expect_line "milliseconds to seconds" 'hypfs_params_sched_credit_tslice_seconds 0.03'
expect_line "a string parameter" 'hypfs_params_loglvl_info{value="warning/warning"} 1'
expect_line "a bool" 'hypfs_params_sync_console 0'
expect_line "a signed number" 'hypfs_test_types_i64 -9000000000000000000'
expect_line "the reachability" 'hypfs_up 1'
expect_line "no error yet" 'hypfs_scrape_errors_total 0'
grep -q '^hypfs_build_info{changeset="[^"]*",compile_by=.*version_extra="-hypfs-[0-9.]*",version_major="4",version_minor="17"} 1$' <<<"$m" ||
    fail "hypfs_build_info: $(grep hypfs_build_info <<<"$m")"
config_crc=$("$XENHYPFS" cat /buildinfo/config | head -c -1 | gzip -c | tail -c 8 | od -An -tu4 -N4 | tr -d ' ')
expect_line "gzip content: a CRC-32 of its inflated text" "hypfs_build_config_crc32 $config_crc"
grep -q 'name="web",value="web"\|hypfs_domain_name' <<<"$m" &&
    fail "an instance's name is a label, not a metric"
grep -q '^hypfs_test_types_blob' <<<"$m" && fail "a blob was exported"
grep -q 'string_odd_info{value="tab\\\\x09nl\\ncr\\\\x0dbell\\\\x07 esc\\\\x1b hi\\\\x80\\\\xff\\\\xe9 end"} 1' <<<"$m" ||
    fail "odd bytes escaped: $(grep string_odd <<<"$m")"
# HELP says what the metric means (docs/paths.md), then where it comes from.
expect_line "HELP of a documented entry" \
    '# HELP hypfs_domain_vcpus The domain'"'"'s virtual cpus (hypfs /domain/<id>/vcpus)'
expect_line "HELP of a converted unit" \
    '# HELP hypfs_domain_memory_bytes The domain'"'"'s memory (hypfs /domain/<id>/memory, in bytes)'
expect_line "the exporter's own build" 'hypfs_exporter_build_info{version="'"$("$HYPFS_EXPORTER" --version | sed 's/.* //')"'"} 1'
# What a guest writes is a label value only if listed (--guest-value):
# every distinct string would be a series the guest makes.  "" is the
# value every domain starts with.
expect_line "a guest's initial status" 'hypfs_domain_guest_status_info{domain="1",name="web",value=""} 1'
# Two paths that make one name: one series, the other counted.
check "one series per name" 1 "$(grep -c '^hypfs_test_a_bx ' <<<"$m")"
expect_line "skipped: 4 blobs, a.b and ~" 'hypfs_scrape_skipped_entries 6'
big_crc=$("$XENHYPFS" cat /test/types/string_big | head -c -1 | gzip -c | tail -c 8 | od -An -tu4 -N4 | tr -d ' ')
expect_line "a long string: a CRC-32 of its text" "hypfs_test_types_string_big_crc32 $big_crc"
check "entries" "$("$XENHYPFS" tree | wc -l)" \
    "$(sed -n 's/^hypfs_scrape_entries //p' <<<"$m")"

# Valid for Prometheus's own checker, and valid UTF-8.
promtool check metrics <<<"$m" >"$tmp/promtool.out" 2>&1 ||
    fail "promtool check metrics: $(cat "$tmp/promtool.out")"
iconv -f UTF-8 -t UTF-8 <<<"$m" >/dev/null || fail "output is not UTF-8"

# OpenMetrics when asked; gzip when asked.
om=$(scrape -H 'Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5')
check "OpenMetrics ends with # EOF" "# EOF" "$(tail -1 <<<"$om")"
grep -qxF '# TYPE hypfs_params_loglvl info' <<<"$om" || fail "OpenMetrics info type"
grep -qxF '# TYPE hypfs_scrape_errors counter' <<<"$om" || fail "OpenMetrics counter type"
text=$(scrape -H 'Accept: application/openmetrics-text;q=0,text/plain')
check "q=0 refuses OpenMetrics" "$m" "$text"
curl -sf -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/metrics" -o "$tmp/m.gz" ||
    fail "gzip scrape"
check "gzip, inflated" "$m" "$(gunzip -c "$tmp/m.gz" | grep -v '^hypfs_scrape_duration_seconds ')"
check "/ answers" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")"
check "elsewhere: 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/x")"
check "POST: 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' -d x "http://127.0.0.1:$port/metrics")"

# The walk of interface version 1 gives the same.
main_port=$port
start_exporter XENHYPFS_V1=1 --
check "v1 walk = one subtree read" "$m" "$(scrape)"
kill "$exporter_pid"; wait "$exporter_pid" || true

# Only what is asked for.
start_exporter -- --include /params --include /domain --exclude /domain/0
sub=$(scrape)
grep -q '^hypfs_params_loglvl_info' <<<"$sub" || fail "--include /params"
grep -q '^hypfs_domain_vcpus{domain="1"' <<<"$sub" || fail "--include /domain"
grep -q 'domain="0"' <<<"$sub" && fail "--exclude /domain/0"
grep -q '^hypfs_test\|^hypfs_build\|^hypfs_cpupool' <<<"$sub" && fail "not included, yet exported"
kill "$exporter_pid"; wait "$exporter_pid" || true
run_fails 1 "$HYPFS_EXPORTER" --include params
case "$err" in *"--include params: not an absolute path"*) ;;
    *) fail "relative --include: $err" ;; esac
run_fails 1 "$HYPFS_EXPORTER" --listen nowhere
case "$err" in *"--listen nowhere: expected [HOST]:PORT"*) ;;
    *) fail "bad --listen: $err" ;; esac
# A guest writing a new status each time makes no new series.
"$HYPFSCTL" domain-create guest1 >/dev/null
for v in ready junk-1 junk-2; do
    "$XENHYPFS" write /domain/2/guest-status "$v"
    start_exporter -- --guest-value ready --guest-value booting
    m=$(scrape)
    kill "$exporter_pid"
    case $v in
    ready) expect_line "a listed guest value" 'hypfs_domain_guest_status_info{domain="2",name="guest1",value="ready"} 1' ;;
    *) expect_line "an unlisted guest value ($v)" 'hypfs_domain_guest_status_info{domain="2",name="guest1",value="other"} 1' ;;
    esac
    grep -q "junk" <<<"$m" && fail "a guest's unlisted value became a label: $v"
done
# Prometheus's exporter conventions: --web.listen-address and
# --web.telemetry-path; / names where the metrics are.
"$HYPFS_EXPORTER" --web.listen-address 127.0.0.1:0 --web.telemetry-path /m 2>"$tmp/web.log" &
exporters+=($!)
for _ in $(seq 500); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$tmp/web.log")
    [ -n "$port" ] && break
    sleep 0.01
done
[ -n "$port" ] || fail "--web.listen-address: the exporter did not start: $(cat "$tmp/web.log")"
curl -sf "http://127.0.0.1:$port/m" | grep -q '^hypfs_up 1$' || fail "--web.telemetry-path /m"
case "$(curl -sf "http://127.0.0.1:$port/")" in *"metrics are at /m "*) ;;
    *) fail "/ does not name the telemetry path" ;; esac
# --web.config.file (the exporter-toolkit's format): TLS, and basic
# authentication against a bcrypt hash ($2y$, as htpasswd -B makes it).
mkdir "$tmp/web"
web_config "$tmp/web" 's3cret' || fail "could not make a certificate (openssl, python3)"
start_exporter -- --web.config.file "$tmp/web/web.yml"
url=https://127.0.0.1:$port/metrics
tls=(--cacert "$tmp/web/server.crt" --max-time 10)
curl -sf "${tls[@]}" -u alice:s3cret "$url" | grep -qx 'hypfs_up 1' ||
    fail "TLS with the right password: no metrics"
check "a wrong password" 401 "$(curl -s -o /dev/null -w '%{http_code}' "${tls[@]}" -u alice:nope "$url")"
check "no password" 401 "$(curl -s -o /dev/null -w '%{http_code}' "${tls[@]}" "$url")"
check "an unknown user" 401 "$(curl -s -o /dev/null -w '%{http_code}' "${tls[@]}" -u bob:s3cret "$url")"
curl -s "${tls[@]}" -D - -o /dev/null "$url" | grep -qi '^WWW-Authenticate: Basic realm="hypfs-exporter"' ||
    fail "no WWW-Authenticate on a 401"
curl -sf --max-time 10 -o /dev/null "http://127.0.0.1:$port/metrics" &&
    fail "plain HTTP answered on the TLS port"
curl -sf "${tls[@]}" --tls-max 1.1 -u alice:s3cret -o /dev/null "$url" 2>/dev/null &&
    fail "TLS 1.1 taken (the default minimum is TLS 1.2)"
kill "$exporter_pid"
# Authentication alone, without TLS (the file may have either).
sed -n '/^basic_auth_users:/,$p' "$tmp/web/web.yml" > "$tmp/web/auth-only.yml"
start_exporter -- --web.config.file "$tmp/web/auth-only.yml"
curl -sf --max-time 10 -u alice:s3cret "http://127.0.0.1:$port/metrics" | grep -qx 'hypfs_up 1' ||
    fail "basic authentication over HTTP"
check "over HTTP, no password" 401 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$port/metrics")"
kill "$exporter_pid"
# What it cannot honour is refused, with the line and the key: never
# a security setting silently dropped.
bad_web() {  # bad_web MESSAGE YAML
    printf '%s\n' "$2" > "$tmp/web/bad.yml"
    run_fails 1 "$HYPFS_EXPORTER" --listen 127.0.0.1:0 --web.config.file "$tmp/web/bad.yml"
    case "$err" in *"$1"*) ;; *) fail "--web.config.file: '$2': $err" ;; esac
}
bad_web "bad.yml:2: client_auth_type: hypfs-exporter takes no client certificates" \
    "$(printf 'tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n  cert_file: server.crt\n  key_file: server.key')"
bad_web "bad.yml:1: rate_limit is not supported by hypfs-exporter" \
    "$(printf 'rate_limit:\n  burst: 20')"
bad_web "bad.yml:2: basic_auth_users: alice: a bcrypt hash is needed" \
    "$(printf 'basic_auth_users:\n  alice: plaintext')"
bad_web "cannot read $tmp/web/missing.crt" \
    "$(printf 'tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key')"
bad_web "a certificate and its key are needed" \
    "$(printf 'tls_server_config:\n  cert_file: server.crt')"
bad_web "not YAML" "tls_server_config: [unclosed"

# A port beyond 65535 is refused, not taken modulo 65536.
run_fails 1 "$HYPFS_EXPORTER" --listen 127.0.0.1:99999
case "$err" in *"--listen 127.0.0.1:99999: the port is a number from 0 to 65535"*) ;;
    *) fail "--listen with port 99999: $err" ;; esac
run_fails 1 "$HYPFS_EXPORTER" --listen 127.0.0.1:-1
run_ok "$HYPFS_EXPORTER" --version
run_ok "$HYPFS_EXPORTER" --help

# A misbehaving client holds nothing: idle connections, half a request,
# a huge header, garbage.
port=$main_port
fds=()
for _ in $(seq 100); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$port" && fds+=("$fd")
done
exec {slow}<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /metrics HTTP/1.1\r\nHost: x\r\n' >&"$slow"
exec {junk}<>"/dev/tcp/127.0.0.1/$port"
head -c 4096 /dev/urandom >&"$junk" 2>/dev/null || true
status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 \
         -H "X-Big: $(head -c 100000 /dev/zero | tr '\0' a)" \
         "http://127.0.0.1:$port/metrics")
case "$status" in 000|4*) ;; *) fail "a 100 kB header: answered $status" ;; esac
check "served among misbehaving clients" "$m" "$(scrape)"
for fd in "${fds[@]}" "$slow" "$junk"; do exec {fd}>&-; done

# Rights: a user mapped to domain 1 sees domain 1's entries only.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    stop_hypfsd
    printf 'map 65534 1\n' > "$tmp/map.conf"
    start_hypfsd --test-tree --config "$tmp/map.conf"
    "$HYPFSCTL" domain-create web --vcpus 3 >/dev/null
    mkdir -p "$tmp/bin"
    cp "$HYPFS_EXPORTER" "$tmp/bin/"
    chmod -R a+rX "$tmp/bin"
    start_exporter -- >/dev/null
    # (that one is root's: the control domain's view, for comparison)
    root_view=$(scrape)
    log=$tmp/exporter.guest.log
    exporter_as() {  # exporter_as UID: another exporter, as that user
        : >"$log"
        setpriv --reuid="$1" --regid="$1" --clear-groups \
            env HYPFS_SOCKET="$HYPFS_SOCKET" "$tmp/bin/hypfs-exporter" \
            --listen 127.0.0.1:0 2>"$log" &
        exporters+=("$!")
        for _ in $(seq 500); do
            port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$log")
            [ -n "$port" ] && break
            sleep 0.01
        done
    }
    exporter_as 65534
    guest=$(scrape)
    grep -q '^hypfs_domain_vcpus{domain="1",name="web"} 3$' <<<"$guest" ||
        fail "domain 1 sees its own vcpus: $guest"
    grep -q 'domain="0"\|^hypfs_params\|^hypfs_test' <<<"$guest" &&
        fail "domain 1 sees what it may not: $(grep 'domain="0"\|^hypfs_params\|^hypfs_test' <<<"$guest" | head -3)"
    grep -q 'domain="0"' <<<"$root_view" || fail "the control domain sees domain 0"
    # A user hypfsd maps to no domain: hypfs_up 0, and the log says how
    # to give it a view.
    exporter_as 65533
    grep -qx 'hypfs_up 0' <<<"$(scrape)" || fail "hypfs_up for an unmapped user"
    grep -q "hint: under hypfsd, a line 'map [^ ]* 0' in its configuration" "$log" ||
        fail "no hint for an unmapped user: $(cat "$log")"
fi

# hypfsd down: hypfs_up 0, still serving; back: 1.
port=$main_port
stop_hypfsd
down=$(scrape)
grep -qx 'hypfs_up 0' <<<"$down" || fail "hypfs_up while hypfsd is down"
grep -q '^hypfs_scrape_errors_total [1-9]' <<<"$down" || fail "errors counted"
grep -q '^hypfs_domain' <<<"$down" && fail "values shown while down"
promtool check metrics <<<"$down" >/dev/null 2>&1 || fail "promtool, while down"
start_hypfsd --test-tree
grep -qx 'hypfs_up 1' <<<"$(scrape)" || fail "hypfs_up after hypfsd is back"

# An exposition sent as it is made, in many pieces (400 domains: ~200 KB,
# the families' samples one after another): the same text plain, gzip,
# to an HTTP/1.0 client (no chunks: the end is the connection's), and a
# HEAD has its headers and no body.
for i in $(seq 400); do "$HYPFSCTL" domain-create "d$i" >/dev/null; done
big=$(scrape)
check "all 401 domains' names, once each" 401 \
    "$(grep -c '^hypfs_domain_vcpus{domain="[0-9]*",name="[^"]*"} ' <<<"$big")"
[ "${#big}" -gt 100000 ] || fail "the big exposition is only ${#big} bytes"
promtool check metrics <<<"$big" >/dev/null 2>&1 || fail "promtool, 400 domains"
curl -sf -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/metrics" -o "$tmp/big.gz" ||
    fail "gzip scrape, 400 domains"
check "gzip, 400 domains, inflated" "$big" \
    "$(gunzip -c "$tmp/big.gz" | grep -v '^hypfs_scrape_duration_seconds ')"
check "HTTP/1.0, 400 domains" "$big" "$(scrape --http1.0)"
check "OpenMetrics, 400 domains: one # EOF, at the end" "1 # EOF" \
    "$(scrape -H 'Accept: application/openmetrics-text' | grep -c '^# EOF') $(scrape -H 'Accept: application/openmetrics-text' | tail -1)"
head_out=$(curl -sfI "http://127.0.0.1:$port/metrics") || fail "HEAD /metrics"
grep -qi '^content-type: text/plain; version=0.0.4' <<<"$head_out" ||
    fail "HEAD: no content type: $head_out"
finish
