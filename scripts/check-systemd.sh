#!/bin/sh
# check-systemd.sh: check the systemd files in systemd/ the way a Debian 12 host would read them.
#
#   1. systemd-analyze verify on edgelm.service and edgelm.socket; any warning fails the check
#      (verify itself only warns about unknown keys and bad values).
#   2. systemd-analyze security --offline=true on edgelm.service: the overall exposure must be
#      at most 2.5 ("OK" or better); the number is parsed from the report.
#   3. systemd-sysusers and systemd-tmpfiles accept the snippets.
#
# verify insists that ExecStart's binary exists, and the host need not have edgelm installed, so it
# runs against a scratch root (--root) holding the host's own unit files, a stub
# /usr/local/bin/edgelm and copies of the other commands the units run. Nothing on the host is
# changed. When systemd-analyze is missing and we are root on Debian, the systemd package is
# installed first (the CI machine is a fresh Debian 12).
#
# Usage: scripts/check-systemd.sh            (from anywhere; exit status 0 when all checks pass)
set -eu

cd "$(dirname "$0")/.."
max_exposure=2.5
units="edgelm.service edgelm.socket"

if ! command -v systemd-analyze >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "check-systemd: installing systemd for systemd-analyze" >&2
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
	else
		echo "check-systemd: systemd-analyze not found (apt-get install systemd)" >&2
		exit 1
	fi
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT INT TERM
mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd" "$root/usr/local/bin"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
for u in $units; do
	cp "systemd/$u" "$root/etc/systemd/system/$u"
done
printf '#!/bin/sh\nexit 0\n' >"$root/usr/local/bin/edgelm"
chmod 0755 "$root/usr/local/bin/edgelm"
# Every other command the units run must exist on this host too; copy it into the root.
for u in $units; do
	sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' "systemd/$u"
done | sort -u | while read -r cmd; do
	case "$cmd" in
	/usr/local/bin/edgelm) ;;
	/*)
		if [ -e "$cmd" ]; then
			mkdir -p "$root$(dirname "$cmd")"
			cp -L "$cmd" "$root$cmd"
		fi
		;;
	esac
done

fail=0

out=$(cd "$root" && systemd-analyze verify --man=no --root="$root" $units 2>&1) || {
	echo "check-systemd: systemd-analyze verify failed:" >&2
	fail=1
}
if [ -n "$out" ]; then
	printf '%s\n' "$out" | sed "s|$root||g" >&2
	[ "$fail" = 1 ] || echo "check-systemd: systemd-analyze verify warned (above)" >&2
	fail=1
else
	echo "check-systemd: verify $units: ok"
fi

report=$(systemd-analyze security --offline=true --no-pager systemd/edgelm.service 2>&1) || true
line=$(printf '%s\n' "$report" | grep 'Overall exposure level' || true)
exposure=$(printf '%s\n' "$line" | sed -n 's/.*Overall exposure level for [^:]*: *\([0-9][0-9.]*\).*/\1/p')
if [ -z "$exposure" ]; then
	printf '%s\n' "$report" >&2
	echo "check-systemd: could not read the exposure level from systemd-analyze security" >&2
	fail=1
elif awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e > m) }'; then
	printf '%s\n' "$report" | grep '^✗' >&2 || true
	echo "check-systemd: edgelm.service exposure $exposure is above $max_exposure" >&2
	fail=1
else
	echo "check-systemd: security edgelm.service: exposure $exposure (max $max_exposure): ok"
fi

mkdir -p "$root/etc"
if out=$(systemd-sysusers --root="$root" "$PWD/systemd/edgelm.sysusers" 2>&1) &&
	grep -q '^edgelm:' "$root/etc/passwd" && grep -q '^edgelm:' "$root/etc/group"; then
	echo "check-systemd: sysusers edgelm.sysusers: ok"
else
	printf '%s\n' "$out" >&2
	echo "check-systemd: systemd-sysusers did not create user and group edgelm" >&2
	fail=1
fi
if out=$(systemd-tmpfiles --root="$root" --create "$PWD/systemd/edgelm.tmpfiles" 2>&1) &&
	[ -d "$root/var/lib/edgelm/models" ] && [ -d "$root/run/edgelm" ]; then
	echo "check-systemd: tmpfiles edgelm.tmpfiles: ok"
else
	printf '%s\n' "$out" >&2
	echo "check-systemd: systemd-tmpfiles did not create the directories" >&2
	fail=1
fi

exit "$fail"
