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
    local p
    XEN_ROOT=$cache/root
    if [ -x "$XEN_ROOT/usr/sbin/xenhypfs" ] && [ -f "$XEN_ROOT/usr/include/xenhypfs.h" ]; then
        return 0
    fi
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || return 1
    mkdir -p "$cache/debs" "$XEN_ROOT"
    (
        cd "$cache/debs"
        # apt-get download needs the package lists; refresh once if missing.
        apt-get download $pkgs >/dev/null 2>&1 ||
            { [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 &&
              apt-get download $pkgs >/dev/null 2>&1; }
    ) || return 1
    for p in "$cache"/debs/*.deb; do
        dpkg-deb -x "$p" "$XEN_ROOT" || return 1
    done
    [ -x "$XEN_ROOT/usr/sbin/xenhypfs" ] && [ -f "$XEN_ROOT/usr/include/xenhypfs.h" ]
}
