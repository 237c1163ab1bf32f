#!/bin/sh
# Download Debian packages and unpack them into DIR/root, without
# installing anything on this machine (apt-get download + dpkg-deb -x):
# what the tests that boot or compare with Debian's own Xen and kernel
# need.  Idempotent: DIR/packages records what DIR/root holds, and a second
# run with the same list does nothing; runs at once wait for each other.
#
#   fetch-debs.sh DIR PACKAGE...
#
# A PACKAGE written "meta:NAME" stands for the package the meta-package
# NAME depends on first (linux-image-amd64 names the current kernel).
set -eu

dir=$1
shift
want=$*
fetched() {
    [ -f "$dir/packages" ] && [ "$(cat "$dir/packages")" = "$want" ] &&
        [ -d "$dir/root" ]
}
fetched && exit 0
mkdir -p "$dir"
# Tests run in parallel and may want the same packages: one fetches.
exec 9>"$dir/lock"
flock 9
fetched && exit 0

# Package lists can be missing on a fresh machine: refresh them once.
refreshed=
refresh() {
    [ -z "$refreshed" ] && [ "$(id -u)" -eq 0 ] || return 1
    refreshed=1
    apt-get update -qq >/dev/null 2>&1 || true
}
resolve() {     # meta:NAME -> the package NAME depends on
    apt-cache depends "$1" 2>/dev/null |
        awk '/ Depends: / { print $2; exit }'
}

pkgs=
for p in "$@"; do
    case "$p" in
    meta:*)
        name=$(resolve "${p#meta:}")
        if [ -z "$name" ] && refresh; then
            name=$(resolve "${p#meta:}")
        fi
        if [ -z "$name" ]; then
            echo "fetch-debs: apt knows no ${p#meta:} (apt-get update?)" >&2
            exit 1
        fi
        pkgs="$pkgs $name" ;;
    *) pkgs="$pkgs $p" ;;
    esac
done

rm -rf "$dir/debs" "$dir/root.new"
mkdir -p "$dir/debs"
# shellcheck disable=SC2086
if ! (cd "$dir/debs" && apt-get download -q $pkgs >/dev/null 2>&1); then
    refresh || true
    # shellcheck disable=SC2086
    (cd "$dir/debs" && apt-get download -q $pkgs >/dev/null) || {
        echo "fetch-debs: cannot download:$pkgs" >&2
        exit 1
    }
fi
for deb in "$dir"/debs/*.deb; do
    dpkg-deb -x "$deb" "$dir/root.new"
done
rm -rf "$dir/debs" "$dir/root"
mv "$dir/root.new" "$dir/root"
echo "$want" > "$dir/packages"
