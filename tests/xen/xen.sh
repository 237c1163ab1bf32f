#!/usr/bin/env bash
# hypfs on the real hypervisor: Debian's Xen 4.17 booted under QEMU, with
# Debian's generic kernel as its PV control domain, whose initramfs runs
# tests/xen/dom0.sh against Xen through /dev/xen/privcmd (Debian's tool and
# libraries against ours, byte for byte; xl set-parameters with either
# library; hypfs-exporter and hypfs-fuse over privcmd).  Then, here:
#   - what dom0 reported is checked (no failure, every section ran);
#   - our ls -l of Xen's tree against hypfsd's: the parts both have must
#     list the same (sizes too, where the values are the same);
#   - every write dom0 made through our library (status, message, value
#     read back) is made again on hypfsd and must give the same result,
#     but for Xen's bugs, each named below;
#   - the --json output is valid JSON holding Xen's tree and values, and
#     the exporter's scrape passes promtool and holds every parameter.
#
# Our tools are the ones our Debian packages install, where the packaging
# suite built them ($HYPFS_DEBS), else the build tree's.
# Run once, on the plain build (meson test --suite xen).  It downloads
# Debian's packages (xen-hypervisor-4.17-amd64, the generic kernel, Xen's
# tools and libraries) unpacked into $HYPFS_XEN_ROOT (./run test sets it
# to .cache/xen; else the build tree), installing nothing.  It never
# skips: if Xen cannot be fetched or booted, it fails.
#
#   HYPFS_XEN_ACCEL   QEMU accelerator (default tcg; kvm where it works)
. "$(dirname "$0")/../cases/lib.sh"
: "${HYPFS_EXPORTER:?}" "${HYPFS_FUSE:?}"

xen_root=${HYPFS_XEN_ROOT:-$MESON_BUILD_DIR/xen-boot}
packages="xen-hypervisor-4.17-amd64 meta:linux-image-amd64 xen-utils-common
xen-utils-4.17 libxenmisc4.17 libxenhypfs1 libxencall1 libxentoollog1
libxentoolcore1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenstore4
libxendevicemodel1 libyajl2"
command -v qemu-system-x86_64 >/dev/null ||
    { echo "qemu-system-x86_64 is missing (Debian: qemu-system-x86; ./run deps)"; exit 1; }
# shellcheck disable=SC2086
sh "$SOURCE_ROOT/tests/support/fetch-debs.sh" "$xen_root" $packages ||
    { echo "Debian's Xen packages could not be fetched into $xen_root"; exit 1; }
root=$xen_root/root
xen_gz=$(ls "$root"/boot/xen-4.17-amd64.gz)
vmlinuz=$(ls "$root"/boot/vmlinuz-*-amd64 | head -n1)

# Our tools as installed from our packages, where they were built
# ($HYPFS_DEBS: the packaging suite's), else from the build tree.
tools=("$XENHYPFS" "$HYPFS_EXPORTER" "$HYPFS_FUSE")
if [ -n "${HYPFS_DEBS:-}" ] && ls "$HYPFS_DEBS"/hypfs-tools_*.deb >/dev/null 2>&1; then
    for p in hypfs-tools hypfs-exporter hypfs-fuse hypfs-xen-compat hypfsd libhypfs1; do
        dpkg-deb -x "$(ls "$HYPFS_DEBS/${p}"_*.deb | head -n1)" "$tmp/pkg"
    done
    multiarch=$(ls "$tmp/pkg/usr/lib" | grep -- -linux-gnu | head -n1)
    # dom0's suite calls our command by Xen's name, as the package's link.
    ln -s "$tmp/pkg/usr/bin/hypfs" "$tmp/xenhypfs"
    tools=("$tmp/xenhypfs" "$tmp/pkg/usr/sbin/hypfs-exporter" "$tmp/pkg/usr/bin/hypfs-fuse")
    export LIBXENHYPFS_DIR=$tmp/pkg/usr/lib/$multiarch/hypfs/xen
    # The hypfsd compared with Xen is the package's too.
    export LD_LIBRARY_PATH=$tmp/pkg/usr/lib/$multiarch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    HYPFSD=$tmp/pkg/usr/sbin/hypfsd
    XENHYPFS=$tmp/xenhypfs
    echo "our tools from the packages in $HYPFS_DEBS"
fi

# QEMU's multiboot loader takes an uncompressed (ELF32) Xen.
gzip -dc "$xen_gz" > "$tmp/xen"
sh "$SOURCE_ROOT/tests/xen/mkinitramfs.sh" "$tmp/initrd" "$root" "${tools[@]}"

# Xen on the first serial port, dom0's results on the second.  QEMU's
# "-cpu max" offers SMAP/SMEP, with which Xen's PV dom0 faults at once:
# off.  Commas in multiboot module arguments would have to be doubled.
console=$tmp/console.log
results=$tmp/results.log
echo "booting Xen 4.17 ($(basename "$vmlinuz") as dom0) under QEMU (${HYPFS_XEN_ACCEL:-tcg})"
t0=$(date +%s)
status=0
timeout 1200 qemu-system-x86_64 -machine pc,accel="${HYPFS_XEN_ACCEL:-tcg}" \
    -cpu max -smp 2 -m 1536 -display none -no-reboot -monitor none \
    -serial "file:$console" -serial "file:$results" \
    -kernel "$tmp/xen" \
    -append "console=com1 com1=115200,8n1 dom0_mem=768M smap=0 smep=0 sync_console" \
    -initrd "$vmlinuz console=hvc0 quiet loglevel=3,$tmp/initrd" \
    </dev/null >"$tmp/qemu.log" 2>&1 || status=$?
echo "QEMU ran $(( $(date +%s) - t0 )) s (status $status)"
tr -d '\r' < "$results" > "$tmp/r"
show_console() {
    echo "--- Xen's console (last 40 lines):"
    tr -d '\r' < "$console" | tail -40
    cat "$tmp/qemu.log"
}
if ! grep -q '^BEGIN ' "$tmp/r"; then
    show_console
    fail "Xen's dom0 never ran the suite (QEMU status $status)"
    finish
fi
if ! grep -q '^END ' "$tmp/r"; then
    show_console
    echo "--- the suite's last records:"
    tail -20 "$tmp/r"
    fail "the suite in dom0 did not finish"
    finish
fi
grep -E '^(INFO|OK) ' "$tmp/r" | sed 's/^[A-Z]* /dom0: /'
if grep -qE '^(FAIL|DIFF) ' "$tmp/r"; then
    grep -E '^(FAIL|DIFF) ' "$tmp/r" | sed 's/^/dom0: /' >&2
    fail "$(grep -c '^FAIL ' "$tmp/r") check(s) failed in dom0"
fi
sed -n 's/^END //p' "$tmp/r"

# ---- hypfsd against Xen: ls -l of what both have ----
start_hypfsd
lsl_compare() {     # ls -l lines, on Xen and on hypfsd
    local dir line name h mask
    cut -d'|' -f1 "$tmp/xen.lsl" | sort -u | while IFS= read -r dir; do
        # What the two builds need not share (build information, a
        # directory's listing size) is masked: the column of sizes.
        case "$dir" in /params|/cpupool/0) mask='{ print }' ;;
        *) mask='{ $4 = "SIZE"; print }' ;; esac
        "$XENHYPFS" ls -l "$dir" > "$tmp/h.lsl" 2>&1 ||
            { fail "hypfsd has no $dir: $(cat "$tmp/h.lsl")"; continue; }
        grep -F "$dir|" "$tmp/xen.lsl" | cut -d'|' -f2- | while IFS= read -r line; do
            name=$(awk '{ print $6 }' <<<"$line")
            h=$(awk -v n="$name" '$6 == n' "$tmp/h.lsl")
            if [ -z "$h" ]; then
                fail "hypfsd lacks Xen's $dir/$name"
            elif [ "$(awk "$mask" <<<"$h")" != "$(awk "$mask" <<<"$line")" ]; then
                fail "ls -l $dir: Xen: '$line'; hypfsd: '$h'"
            fi
        done
    done
}
sed -n 's/^LSL //p' "$tmp/r" > "$tmp/xen.lsl"
[ -s "$tmp/xen.lsl" ] || fail "no ls -l from dom0"
lsl_compare
echo "ls -l of Xen's $(cut -d'|' -f1 "$tmp/xen.lsl" | sort -u | wc -l) directories compared with hypfsd's"

# ---- hypfsd against Xen: every write dom0 made ----
# Xen's bugs, where hypfsd keeps the right behaviour (docs/xen-tools.md):
#   loglvl, guest_loglvl: a value refused (EINVAL) has changed the levels
#     already (Xen's _parse_loglvl() sets them before it checks the rest);
#   gnttab_*: a number above what an unsigned long holds wraps round in
#     simple_strtoul() and may be taken (2^64 is taken as 0).
known() {   # PARAM VALUE XEN-STATUS XEN-MESSAGE: is it one of those?
    case "$1:$3:$4" in
    loglvl:3:*"Invalid argument"|guest_loglvl:3:*"Invalid argument") return 0 ;;
    gnttab_max_frames:0:|gnttab_max_maptrack_frames:0:)
        [ ${#2} -gt 19 ] ;;
    *) return 1 ;;
    esac
}
probes=0
differences=0
while IFS='|' read -r p v xst xmsg xback; do
    orig=$("$XENHYPFS" cat "/params/$p")
    st=0
    msg=$("$XENHYPFS" write "/params/$p" "$v" 2>&1) || st=$?
    back=$("$XENHYPFS" cat "/params/$p" 2>&1)
    "$XENHYPFS" write "/params/$p" "$orig" >/dev/null 2>&1
    probes=$((probes + 1))
    [ "$st|$msg|$back" = "$xst|$xmsg|$xback" ] && continue
    if known "$p" "$v" "$xst" "$xmsg"; then
        differences=$((differences + 1))
        echo "known difference: write /params/$p '$v': Xen $xst '$xmsg' -> '$xback'; hypfsd $st '$msg' -> '$back'"
        continue
    fi
    fail "write /params/$p '$v': Xen: $xst '$xmsg', reads '$xback'; hypfsd: $st '$msg', reads '$back'"
done < <(sed -n 's/^PROBE //p' "$tmp/r")
[ "$probes" -gt 0 ] || fail "no writes reported by dom0"
echo "$probes writes made on Xen and on hypfsd: $((probes - differences)) identical, $differences Xen's known bugs"
stop_hypfsd

# ---- Our JSON, and the exporter's scrape ----
sed -n 's/^JSON //p' "$tmp/r" > "$tmp/tree.json"
sed -n 's/^DUMPJSON //p' "$tmp/r" > "$tmp/dump.json"
sed -n 's/^TREE //p' "$tmp/r" > "$tmp/tree.txt"
sed -n 's/^VAL //p' "$tmp/r" > "$tmp/values.txt"
python3 - "$tmp" <<'PY' || fail "our --json output over Xen"
import json, sys
d = sys.argv[1]
# Xen's tree, from Debian's "xenhypfs tree": two spaces a level.
paths, stack = set(), []
for line in open(f"{d}/tree.txt").read().splitlines()[1:]:
    depth = (len(line) - len(line.lstrip(" "))) // 2
    name = line.strip().rstrip("/")
    stack[depth - 1:] = [name]
    paths.add("/" + "/".join(stack))
def walk(node, prefix, out):
    for e in node.get("entries", []):
        p = prefix.rstrip("/") + "/" + e["name"]
        out[p] = e
        walk(e, p, out)
for f in ("tree", "dump"):
    doc = json.load(open(f"{d}/{f}.json"))
    got = {}
    walk(doc, doc["path"], got)
    if set(got) != paths:
        sys.exit(f"--json {f}: paths differ from xenhypfs tree: "
                 f"{sorted(set(got) ^ paths)[:5]}")
    if f == "dump":
        for line in open(f"{d}/values.txt").read().splitlines():
            p, _, v = line.partition("|")
            got_v = got[p].get("value")
            # Numbers are JSON numbers, booleans JSON booleans.
            if isinstance(got_v, bool):
                got_v = "1" if got_v else "0"
            elif isinstance(got_v, int):
                got_v = str(got_v)
            if got_v != v:
                sys.exit(f"--json dump: {p} is {got[p].get('value')!r}, "
                         f"xenhypfs cat says {v!r}")
print(f"--json tree and dump hold Xen's {len(paths)} paths and its values")
PY
sed -n 's/^METRICS //p' "$tmp/r" > "$tmp/metrics"
if command -v promtool >/dev/null; then
    promtool check metrics < "$tmp/metrics" >/dev/null 2>"$tmp/promtool" ||
        fail "promtool on the exporter's scrape of Xen: $(head -5 "$tmp/promtool")"
else
    fail "promtool is missing (Debian: prometheus; ./run deps)"
fi
grep -qx 'hypfs_up 1' "$tmp/metrics" || fail "exporter over Xen: hypfs_up is not 1"
grep -q '^hypfs_build_info{.*version_major="4",version_minor="17"} 1$' "$tmp/metrics" ||
    fail "exporter over Xen: no hypfs_build_info of 4.17"
while IFS='|' read -r path _; do
    case "$path" in /params/*) ;; *) continue ;; esac
    m=hypfs_params_$(printf '%s' "${path#/params/}" | tr -c 'A-Za-z0-9_\n' _)
    grep -qE "^${m}(_info\{| )" "$tmp/metrics" ||
        fail "exporter over Xen: no metric for $path ($m)"
done < "$tmp/values.txt"
echo "exporter over Xen: $(grep -c '^hypfs_' "$tmp/metrics") samples, promtool clean"
finish
