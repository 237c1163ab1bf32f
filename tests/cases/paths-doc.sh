#!/usr/bin/env bash
# docs/paths.md against a running hypfsd, both ways: every documented path
# exists, every existing path is documented, and the document's [w] tag
# matches what the entry allows.  Numeric directories under /cpupool/ and
# /domain/ are matched by <id>.
. "$(dirname "$0")/lib.sh"

start_hypfsd --test-tree
"$HYPFSCTL" domain-create doc-test >/dev/null
"$HYPFSCTL" pool-create doc-pool >/dev/null

# Walk the live tree with ls: one "path flag" line per entry (flag w or -).
walk() {
    local dir=$1 line type rw name path
    "$XENHYPFS" ls "$dir" | while IFS= read -r line; do
        type=${line:0:8}
        rw=${line:10:1}
        name=${line:12}
        path=${dir%/}/$name
        if [ "$type" = "<dir>   " ]; then
            echo "$path/ -"
            walk "$path"
        else
            echo "$path $rw"
        fi
    done
}
echo "/ -" > "$tmp/live.raw"
walk / >> "$tmp/live.raw"
sed -E 's#^/(cpupool|domain)/[0-9]+(/|$)#/\1/<id>\2#' "$tmp/live.raw" |
    sort -u > "$tmp/live"

# The document: "#### PATH = VALUES [TAGS]" or "#### PATH/ [TAGS]".
grep '^#### /' "$SOURCE_ROOT/docs/paths.md" | while IFS= read -r line; do
    path=$(echo "$line" | awk '{print $2}')
    tags=$(echo "$line" | sed -nE 's/.*\[([^]]*)\][[:space:]]*$/\1/p')
    w=-
    case ",$tags," in *,w,*) w=w ;; esac
    echo "$path $w"
done | sort -u > "$tmp/doc"

# Paths alone first, for readable messages, then with the w flag.
cut -d' ' -f1 "$tmp/live" | sort -u > "$tmp/live.paths"
cut -d' ' -f1 "$tmp/doc" | sort -u > "$tmp/doc.paths"
undocumented=$(comm -23 "$tmp/live.paths" "$tmp/doc.paths")
missing=$(comm -13 "$tmp/live.paths" "$tmp/doc.paths")
check "paths that exist but are not documented" "" "$undocumented"
check "documented paths that do not exist" "" "$missing"
check "writability differs from the document's [w] tag" "" "$(comm -3 "$tmp/live" "$tmp/doc")"
n=$(wc -l < "$tmp/live.raw")
echo "$n live entries checked against $(wc -l < "$tmp/doc") documented paths"

stop_hypfsd
finish
