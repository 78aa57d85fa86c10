#!/usr/bin/env bash
# Reads apt's source lists and says where QEMU 10 can come from: the Debian
# mirror this machine already uses (so no host name is assumed) and whether
# the backports suite of its release is configured. scripts/setup.sh uses
# it; tests/setup.rs runs it against fixture trees of every apt layout.
#
#   scripts/apt-sources.sh plan   what it found, and what it would add
#   scripts/apt-sources.sh add    the same, and writes the backports source
#                                 when it is missing (needs root on /)
#
# BULKHEAD_APT_ROOT (default /) is the tree it reads and writes: its
# etc/os-release names the release, its etc/apt/sources.list (one-line
# form) and etc/apt/sources.list.d/*.list and *.sources (deb822 form) are
# read the way apt reads them, in that order. Only enabled `deb` entries
# count; `deb-src`, comments, `Enabled: no` stanzas are skipped.
#
# Output, one fact a line:
#   codename bookworm
#   mirror http://deb.debian.org/debian       the first enabled `deb` entry of
#                                             the release suite with a network
#                                             URI (http, https, ftp; mirror+
#                                             and tor+ forms), trailing / cut
#   backports configured FILE                 an enabled `deb` entry of
#                                             <codename>-backports exists
#   backports missing
#   add FILE                                  followed by the deb822 stanza
#     Types: deb                              (indented two spaces) it would
#     ...                                     write, or has written
# Exit status: 0 done; 3 backports missing and no network mirror to add it
# from (the message names what to install by hand); 2 unreadable tree.
set -euo pipefail
export LC_ALL=C # apt's order of sources.list.d/ is byte order

root=${BULKHEAD_APT_ROOT:-/}
root=${root%/}
mode=${1:-plan}
case "$mode" in
    plan|add) ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "apt-sources.sh: unknown mode '$mode' (plan or add)" >&2; exit 2 ;;
esac

fail() { echo "setup: $*" >&2; exit "${status:-2}"; }

os_release=$root/etc/os-release
[ -r "$os_release" ] || fail "cannot read $os_release to learn the Debian release"
codename=$(sed -nE 's/^VERSION_CODENAME="?([^"]*)"?$/\1/p' "$os_release")
[ -n "$codename" ] || fail "$os_release has no VERSION_CODENAME: is this Debian?"

# Every enabled `deb` entry as "file<TAB>uri<TAB>suite<TAB>signed-by", in
# apt's order. Signed-By is carried only when it is one line (a keyring
# path or fingerprints); an inline key is left out: apt's own trusted
# keyrings then vouch for the Debian archive.
one_line_entries() {
    awk -v file="$2" '
        { sub(/#.*/, "") }
        $1 != "deb" { next }
        {
            i = 2; signed = ""
            if ($i ~ /^\[/) {
                # Options: [ key=value ... ], the brackets attached or not.
                while (i <= NF) {
                    option = $i; gsub(/[][]/, "", option)
                    if (tolower(option) ~ /^signed-by=/) signed = substr(option, 11)
                    if ($i ~ /\]$/) break
                    i++
                }
                i++
            }
            if (i + 1 <= NF) printf "%s\t%s\t%s\t%s\n", file, $i, $(i + 1), signed
        }' "$1"
}

deb822_entries() {
    awk -v file="$2" '
        function reset() { types = ""; uris = ""; suites = ""; signed = ""; enabled = "yes"; key = "" }
        function emit(   n, m, t, u, s, i, j, deb) {
            deb = 0
            n = split(types, t, /[ \t]+/)
            for (i = 1; i <= n; i++) if (t[i] == "deb") deb = 1
            if (deb && tolower(enabled) !~ /^(no|false|0)$/) {
                n = split(uris, u, /[ \t]+/); m = split(suites, s, /[ \t]+/)
                for (i = 1; i <= n; i++) for (j = 1; j <= m; j++)
                    if (u[i] != "" && s[j] != "") printf "%s\t%s\t%s\t%s\n", file, u[i], s[j], signed
            }
            reset()
        }
        function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
        BEGIN { reset() }
        /^#/ { next }
        /^[ \t\r]*$/ { emit(); next }
        /^[ \t]/ {
            # A continuation line: more URIs or suites; a multi-line
            # Signed-By is an inline key, which is not copied.
            if (key == "uris") uris = uris " " trim($0)
            else if (key == "suites") suites = suites " " trim($0)
            else if (key == "types") types = types " " trim($0)
            else if (key == "signed-by") signed = ""
            next
        }
        {
            colon = index($0, ":")
            if (colon == 0) next
            key = tolower(trim(substr($0, 1, colon - 1)))
            value = trim(substr($0, colon + 1))
            if (key == "types") types = value
            else if (key == "uris") uris = value
            else if (key == "suites") suites = value
            else if (key == "enabled") enabled = value
            else if (key == "signed-by") signed = value
        }
        END { emit() }' "$1"
}

# apt's order: sources.list, then sources.list.d/ by name (.list and
# .sources alike).
sources=()
[ -f "$root/etc/apt/sources.list" ] && sources+=(/etc/apt/sources.list)
for file in "$root"/etc/apt/sources.list.d/*; do
    case "$file" in
        *.list|*.sources) [ -f "$file" ] && sources+=("${file#"$root"}") ;;
    esac
done
table=$(
    for file in "${sources[@]}"; do
        case "$file" in
            *.sources) deb822_entries "$root$file" "$file" ;;
            *) one_line_entries "$root$file" "$file" ;;
        esac
    done
)

echo "codename $codename"

network='^(https?|ftp|(mirror|tor)\+https?)://'
mirror=""
signed=""
while IFS=$'\t' read -r _file uri suite signed_by; do
    if [ "$suite" = "$codename" ] && [[ $uri =~ $network ]]; then
        mirror=${uri%/}
        while [ "$mirror" != "${mirror%/}" ]; do mirror=${mirror%/}; done
        signed=$signed_by
        break
    fi
done <<<"$table"
[ -z "$mirror" ] || echo "mirror $mirror"

backports_file=$(awk -F'\t' -v suite="$codename-backports" '$3 == suite { print $1; exit }' <<<"$table")
if [ -n "$backports_file" ]; then
    echo "backports configured $backports_file"
    exit 0
fi
echo "backports missing"

if [ -z "$mirror" ]; then
    read_list=${sources[*]:-none}
    status=3 fail "$codename-backports is not configured, and no network Debian mirror to add it from:
  read: $read_list (under ${root:-/})
  looked for: an enabled 'deb' entry of suite $codename with an http, https or ftp URI.
  Either add your Debian mirror to the apt sources, e.g. /etc/apt/sources.list.d/debian.sources:
    Types: deb
    URIs: http://deb.debian.org/debian
    Suites: $codename $codename-updates
    Components: main
  or install by hand: qemu-system-arm 10 or later (from $codename-backports; it provides
  qemu-system-aarch64) and gcc-aarch64-linux-gnu, then run this again."
fi

target=/etc/apt/sources.list.d/bulkhead-backports.sources
stanza="Types: deb
URIs: $mirror
Suites: $codename-backports
Components: main${signed:+
Signed-By: $signed}"
echo "add $target"
echo "  ${stanza//$'\n'/$'\n'  }"

if [ "$mode" = add ]; then
    mkdir -p "$root/etc/apt/sources.list.d"
    printf '# Added by Bulkhead'"'"'s scripts/setup.sh: QEMU 10 comes from %s-backports.\n%s\n' \
        "$codename" "$stanza" >"$root$target"
fi
