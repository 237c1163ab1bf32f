#!/usr/bin/env bash
# libhypfs.so.1 is the embedding ABI, and changing it is a decision: its
# SONAME has its own major; it exports exactly the functions the version
# script lists; and libabigail's abidiff finds no change against the
# baseline committed in tests/abi/libhypfs.abi, for the types of the public
# headers (tests/abi/libhypfs.abignore).  A deliberate change regenerates
# the baseline from a plain build (and says why in its commit):
#   abidw --no-show-locs --no-comp-dir-path \
#         --out-file tests/abi/libhypfs.abi build/src/core/libhypfs.so.1
. "$(dirname "$0")/lib.sh"

lib="$MESON_BUILD_DIR/src/core/libhypfs.so.1"
baseline="$SOURCE_ROOT/tests/abi/libhypfs.abi"
map="$SOURCE_ROOT/src/core/libhypfs.map"

soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
check "SONAME" libhypfs.so.1 "$soname"

# Exported: each version node, and each name of the script, in its node.
want=$(awk '/^HYPFS_[0-9.]* *\{/ { node = $1; print node, node }
            /^ *hypfs_[a-z_]*;$/ { sub(/;$/, "", $1); print node, $1 }' "$map" |
       sort)
got=$(objdump -T "$lib" | awk '$2 == "g" && $4 != "*UND*" {print $(NF-1), $NF}' | sort)
check "exported symbols" "$want" "$got"
# And the script lists what hypfs.h declares, nothing private.
declared=$(grep -v '^static' "$SOURCE_ROOT/include/hypfs/hypfs.h" |
           sed -n 's/^[a-z].*[ *]\(hypfs_[a-z_]*\)(.*/\1/p
                   s/^extern const struct hypfs_guest_ops \(hypfs_[a-z_]*\);/\1/p' |
           sort -u)
listed=$(sed -n 's/^ *\(hypfs_[a-z_]*\);$/\1/p' "$map" | sort -u)
check "the version script lists hypfs.h" "$declared" "$listed"

case "${SANITIZE:-none}" in
    none) ;;
    # Sanitizers pad globals and add symbols: the layout is theirs.
    *) finish; exit 0 ;;
esac
command -v abidiff >/dev/null ||
    fail "abidiff is not installed (Debian: abigail-tools; ./run deps)"
if command -v abidiff >/dev/null; then
    if ! abidiff --suppressions "$SOURCE_ROOT/tests/abi/libhypfs.abignore" \
            "$baseline" "$lib" > "$tmp/abidiff.out" 2>&1; then
        cat "$tmp/abidiff.out" >&2
        fail "libhypfs.so.1's ABI differs from tests/abi/libhypfs.abi"
    fi
fi
finish
