#!/usr/bin/env bash
# The Prometheus files we ship (dist/prometheus/) are valid as written:
# the rules pass promtool's check and their unit tests, the example
# scrape configuration (the one docs/fleet.md shows) loads with them.
. "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null ||
    fail "promtool is missing (Debian: prometheus; ./run deps)"
[ "$failures" = 0 ] || finish
cp "$SOURCE_ROOT"/dist/prometheus/* "$tmp/"
cd "$tmp"
run_ok promtool check rules hypfs.rules.yml
run_ok promtool test rules hypfs.rules.test.yml
run_ok promtool check config prometheus.yml
# docs/fleet.md quotes the scrape configuration: the same text.
sed -n '/^```yaml prometheus.yml$/,/^```$/p' "$SOURCE_ROOT/docs/fleet.md" |
    sed '1d;$d' > fleet-prometheus.yml
check "docs/fleet.md shows dist/prometheus/prometheus.yml" \
    "$(cat prometheus.yml)" "$(cat fleet-prometheus.yml)"
finish
