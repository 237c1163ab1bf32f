# Source this: fetches Debian's Xen packages (not installed: downloaded and
# unpacked into a cache in the build tree) and sets XEN_ROOT to where they
# are unpacked.  Returns non-zero (the caller skips) when they cannot be
# fetched, e.g. without network.
#
#   xen-utils-common  /usr/sbin/xenhypfs (its dependencies are heavy, so
#                     the package is unpacked, not installed)
#   libxenhypfs1, libxencall1, libxentoollog1, libxentoolcore1
#                     Xen's own libraries
#   libxen-dev        Xen's headers, xenhypfs.h among them
xen_debs() {
    local cache=${XEN_DEBS_CACHE:-${MESON_BUILD_ROOT:-${TMPDIR:-/tmp}}/xen-debs}
    local pkgs="xen-utils-common libxenhypfs1 libxencall1 libxentoollog1 libxentoolcore1 libxen-dev"
    XEN_ROOT=$cache/root
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || return 1
    # shellcheck disable=SC2086
    sh "$SOURCE_ROOT/tests/support/fetch-debs.sh" "$cache" $pkgs || return 1
    [ -x "$XEN_ROOT/usr/sbin/xenhypfs" ] && [ -f "$XEN_ROOT/usr/include/xenhypfs.h" ]
}
