#!/usr/bin/env bash
# hypfs-exporter scraped by a real Prometheus (Debian's), every second, on
# loopback, in this case's temporary directory: values arrive as
# hypfsctl and xenhypfs set them, a destroyed domain's series goes stale,
# a stopped hypfsd is hypfs_up 0 while the exporter stays up, and a
# restarted one is 1 again; slow clients holding hundreds of connections
# do not make a single scrape fail; a second exporter is scraped over TLS
# with basic authentication.  The shipped rules load into that Prometheus.
# Prometheus's first scrape lands seconds after it starts: every wait polls
# its API (up to 60 s), none sleeps a fixed time.
. "$(dirname "$0")/lib.sh"
: "${HYPFS_EXPORTER:?}"
for c in prometheus promtool curl jq; do
    command -v "$c" >/dev/null || fail "$c is missing (./run deps installs it)"
done
[ "$failures" = 0 ] || finish

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
      for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
      [ "$failures" -eq 0 ] || { echo "--- prometheus said:"; tail -20 "$tmp/prometheus.log"
                                 echo "--- hypfs-exporter said:"; cat "$tmp/exporter.log"; } >&2 2>/dev/null
      cleanup' EXIT

# wait_log FILE SED-EXPR: the first match of SED-EXPR in FILE, within 60 s.
wait_log() {
    local i v
    for i in $(seq 600); do
        v=$(sed -n "$2" "$1" | head -1)
        [ -n "$v" ] && { echo "$v"; return 0; }
        sleep 0.1
    done
    return 1
}

start_hypfsd
"$HYPFSCTL" domain-create web --vcpus 3 >/dev/null
"$HYPFSCTL" domain-create db --vcpus 2 >/dev/null
"$HYPFSCTL" pool-create batch >/dev/null

: >"$tmp/exporter.log"     # there before it is read, however early
"$HYPFS_EXPORTER" --listen 127.0.0.1:0 2>"$tmp/exporter.log" &
pids+=("$!")
eport=$(wait_log "$tmp/exporter.log" 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p') ||
    { fail "hypfs-exporter did not start"; finish; }

# A second exporter behind --web.config.file: Prometheus scrapes it over
# TLS with basic authentication, and is refused with a wrong password.
mkdir "$tmp/web"
web_config "$tmp/web" 'pr0m-s3cret' || { fail "could not make a certificate"; finish; }
: >"$tmp/exporter-tls.log"
"$HYPFS_EXPORTER" --listen 127.0.0.1:0 --web.config.file "$tmp/web/web.yml" \
    2>"$tmp/exporter-tls.log" &
pids+=("$!")
tport=$(wait_log "$tmp/exporter-tls.log" 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p') ||
    { fail "hypfs-exporter with TLS did not start"; finish; }

rules=$SOURCE_ROOT/dist/prometheus/hypfs.rules.yml
cat > "$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $rules
scrape_configs:
  - job_name: hypfs
    static_configs:
      - targets: ['127.0.0.1:$eport']
  - job_name: hypfs-tls
    scheme: https
    tls_config:
      ca_file: $tmp/web/server.crt
    basic_auth:
      username: alice
      password: pr0m-s3cret
    static_configs:
      - targets: ['127.0.0.1:$tport']
  - job_name: hypfs-tls-wrong-password
    scheme: https
    tls_config:
      ca_file: $tmp/web/server.crt
    basic_auth:
      username: alice
      password: guess
    static_configs:
      - targets: ['127.0.0.1:$tport']
EOF
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
    --web.listen-address=127.0.0.1:0 >"$tmp/prometheus.log" 2>&1 &
pids+=("$!")
pport=$(wait_log "$tmp/prometheus.log" 's/.*msg="Listening on" address=127\.0\.0\.1:\([0-9]*\).*/\1/p') ||
    { fail "prometheus did not start"; finish; }

# query PROMQL: the values of the result, one per line ("" if none).
query() {
    curl -sf --max-time 10 "http://127.0.0.1:$pport/api/v1/query" \
        --data-urlencode "query=$1" | jq -r '.data.result[].value[1]'
}
# await WHAT PROMQL EXPECTED: poll until the query gives EXPECTED (60 s).
await() {
    local i got=
    for i in $(seq 600); do
        got=$(query "$2" 2>/dev/null || true)
        [ "$got" = "$3" ] && return 0
        sleep 0.1
    done
    fail "$1: $2 gave '$got', expected '$3'"
}

await "the first scrape" 'up{job="hypfs"}' 1
await "a domain's vcpus, as hypfsctl made it" 'hypfs_domain_vcpus{job="hypfs",name="web"}' 3
await "the other domain" 'hypfs_domain_vcpus{job="hypfs",name="db"}' 2
await "a pool, by name" 'count(hypfs_cpupool_scheduler_info{job="hypfs",name="batch"})' 1
await "the hypervisor is up" 'hypfs_up{job="hypfs"}' 1
await "over TLS with basic authentication" 'hypfs_up{job="hypfs-tls"}' 1
await "TLS: the same vcpus" 'hypfs_domain_vcpus{job="hypfs-tls",name="web"}' 3
await "a wrong password: refused" 'up{job="hypfs-tls-wrong-password"}' 0

# A parameter written: the new value within a few scrapes.
"$XENHYPFS" write /params/gnttab_max_frames 77
await "a written parameter" 'hypfs_params_gnttab_max_frames_info{job="hypfs",value="77"}' 1
"$XENHYPFS" write /params/loglvl info/all
await "a written string parameter" 'hypfs_params_loglvl_info{job="hypfs",value="info/all"}' 1

# A destroyed domain: its series goes stale (no value at the latest time).
id=$("$XENHYPFS" ls /domain | awk '{print $NF}' | while read -r d; do
        [ "$("$XENHYPFS" cat "/domain/$d/name")" = db ] && echo "$d"; done)
"$HYPFSCTL" domain-destroy "$id"
await "a destroyed domain is gone" 'hypfs_domain_vcpus{job="hypfs",name="db"}' ""

# The shipped rules are loaded, and their recording rule works.
await "rules loaded" 'count(hypfs:domains:count{job="hypfs"})' 1

# Slow clients must not keep Prometheus out: 600 connections sending a
# request's headers a byte every 4 s, each made again as soon as the
# exporter closes it.  Every scrape meanwhile succeeds (up is 1 for each):
# Prometheus's, whose connection the exporter may close between scrapes,
# and a new client's, on a new connection each time.
: "${HYPFS_ATTACK:?}"
t0=$(date +%s)
"$HYPFS_ATTACK" "127.0.0.1:$eport" http-slow 20 600 > "$tmp/slow.out" 2>&1 &
slow=$!
sleep 2      # the slow clients have taken what they can
fresh_ok=0
for i in $(seq 15); do
    curl -sf --max-time 3 -o /dev/null "http://127.0.0.1:$eport/metrics" &&
        fresh_ok=$((fresh_ok + 1))
    sleep 1
done
wait "$slow" || fail "the slow clients: $(cat "$tmp/slow.out")"
t1=$(date +%s)
echo "    $(cat "$tmp/slow.out")"
check "scrapes on new connections under slow clients" 15 "$fresh_ok"
# query_at PROMQL TIME: as query, evaluated at TIME (Unix seconds).
query_at() {
    curl -sf --max-time 10 "http://127.0.0.1:$pport/api/v1/query" \
        --data-urlencode "query=$1" --data-urlencode "time=$2" |
        jq -r '.data.result[].value[1]'
}
window=$((t1 - t0 - 2))s
scrapes=$(query_at "count_over_time(up{job=\"hypfs\"}[$window])" "$t1")
ok=$(query_at "sum_over_time(up{job=\"hypfs\"}[$window])" "$t1")
echo "    Prometheus's scrapes during the attack: $ok of $scrapes succeeded"
[ "${scrapes:-0}" -ge 10 ] || fail "only ${scrapes:-0} scrapes in $window of slow clients"
check "scrapes that succeeded under slow clients" "$scrapes" "$ok"

# hypfsd stops: hypfs_up 0, the exporter itself still up.
stop_hypfsd
await "hypfsd stopped" 'hypfs_up{job="hypfs"}' 0
await "the exporter stays up" 'up{job="hypfs"}' 1
await "values gone while down" 'count(hypfs_domain_vcpus{job="hypfs"})' ""
start_hypfsd
await "hypfsd back" 'hypfs_up{job="hypfs"}' 1
await "values back" 'count(hypfs_domain_vcpus{job="hypfs",name="Domain-0"})' 1
finish
