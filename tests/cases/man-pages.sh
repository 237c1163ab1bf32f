#!/usr/bin/env bash
# The man pages as a reader gets them: man-db renders each at 80 columns
# without a single troff warning, mandoc's lint finds nothing (style
# included), and every hypfs page one names exists.
. "$(dirname "$0")/lib.sh"
: "${MESON_BUILD_DIR:?}"
command -v man >/dev/null && command -v mandoc >/dev/null ||
    skip "needs man-db and mandoc (./run deps installs them)"

pages=("$MESON_BUILD_DIR"/docs/*.[1-8])
[ ${#pages[@]} -ge 3 ] || fail "no man pages in $MESON_BUILD_DIR/docs"
for page in "${pages[@]}"; do
    name=$(basename "$page")
    warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    check "man --warnings $name" "" "$warnings"
    check "mandoc -T lint $name" "" "$(mandoc -T lint -W style "$page" 2>&1)"
    # Pages of ours it refers to (".BR hypfs\-fuse (1)") are pages we have.
    for ref in $(sed -n 's/^\.BR \(hypfs[a-z\\-]*\) (\([1-8]\)).*/\1.\2/p' "$page" |
                 sed 's/\\-/-/g'); do
        [ -e "$MESON_BUILD_DIR/docs/$ref" ] ||
            fail "$name refers to $ref, which does not exist"
    done
done
finish
