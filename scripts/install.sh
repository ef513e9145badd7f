#!/bin/sh
# install.sh: put edgelm, its systemd units, its config and the model directory in place.
#
# Usage:
#   scripts/install.sh [BINARY]
#
#   BINARY    the edgelm binary to install; without it one is built with `go build ./cmd/edgelm`
#             (cross-compile for a Raspberry Pi first and pass the result, see docs/service.md).
#
# Environment:
#   PREFIX        where the program goes (default /usr/local):
#                   $PREFIX/bin/edgelm
#                   $PREFIX/lib/systemd/system/edgelm.{service,socket}
#                   $PREFIX/lib/sysusers.d/edgelm.conf, $PREFIX/lib/tmpfiles.d/edgelm.conf
#                   $PREFIX/share/doc/edgelm/{edgelm.toml,configuration.md,service.md}
#   SYSCONFDIR    default /etc: the config goes to $SYSCONFDIR/edgelm/edgelm.toml, only when no
#                 config is there yet (an existing one is never overwritten)
#   LOCALSTATEDIR default /var: models go in $LOCALSTATEDIR/lib/edgelm/models
#   DESTDIR       staging directory prepended to every path (for packaging); default empty
#
# With an empty DESTDIR, run as root, it also creates the edgelm user and group
# (systemd-sysusers), the directories (systemd-tmpfiles) and tells systemd about the new units
# (systemctl daemon-reload). It never enables or starts anything; afterwards:
#   cp model.gguf /var/lib/edgelm/models/model.gguf     # or set model= in /etc/edgelm/edgelm.toml
#   systemctl enable --now edgelm.socket                # start on the first request
#   usermod -aG edgelm "$USER"                          # let a user talk to the socket
set -eu

PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc}
LOCALSTATEDIR=${LOCALSTATEDIR:-/var}
DESTDIR=${DESTDIR:-}

src=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

if [ -z "$bin" ]; then
	echo "install: building edgelm"
	(cd "$src" && go build -trimpath -o "$tmp/edgelm" ./cmd/edgelm)
	bin=$tmp/edgelm
fi
if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
	echo "install: $bin is not an executable file" >&2
	exit 1
fi

say() { echo "install: $*"; }

install -d -m 0755 "$DESTDIR$PREFIX/bin"
install -m 0755 "$bin" "$DESTDIR$PREFIX/bin/edgelm"
say "$PREFIX/bin/edgelm"

# The shipped units name /usr/local/bin and /etc; point them at where things really go.
unitdir=$PREFIX/lib/systemd/system
install -d -m 0755 "$DESTDIR$unitdir"
for u in edgelm.service edgelm.socket; do
	sed -e "s|/usr/local/|$PREFIX/|g" \
		-e "s|/etc/edgelm/|$SYSCONFDIR/edgelm/|g" \
		"$src/systemd/$u" >"$tmp/$u"
	install -m 0644 "$tmp/$u" "$DESTDIR$unitdir/$u"
	say "$unitdir/$u"
done

install -d -m 0755 "$DESTDIR$PREFIX/lib/sysusers.d" "$DESTDIR$PREFIX/lib/tmpfiles.d"
install -m 0644 "$src/systemd/edgelm.sysusers" "$DESTDIR$PREFIX/lib/sysusers.d/edgelm.conf"
sed -e "s|/var/lib/edgelm|$LOCALSTATEDIR/lib/edgelm|g" -e "s|/etc/edgelm|$SYSCONFDIR/edgelm|g" \
	"$src/systemd/edgelm.tmpfiles" >"$tmp/tmpfiles"
install -m 0644 "$tmp/tmpfiles" "$DESTDIR$PREFIX/lib/tmpfiles.d/edgelm.conf"
say "$PREFIX/lib/sysusers.d/edgelm.conf, $PREFIX/lib/tmpfiles.d/edgelm.conf"

docdir=$PREFIX/share/doc/edgelm
install -d -m 0755 "$DESTDIR$docdir"
install -m 0644 "$src/configs/edgelm.toml" "$DESTDIR$docdir/edgelm.toml"
for d in configuration.md service.md; do
	if [ -f "$src/docs/$d" ]; then
		install -m 0644 "$src/docs/$d" "$DESTDIR$docdir/$d"
	fi
done

confdir=$SYSCONFDIR/edgelm
install -d -m 0755 "$DESTDIR$confdir"
sed -e "s|/var/lib/edgelm/|$LOCALSTATEDIR/lib/edgelm/|g" "$src/configs/edgelm.toml" >"$tmp/edgelm.toml"
if [ -e "$DESTDIR$confdir/edgelm.toml" ]; then
	say "$confdir/edgelm.toml exists, left alone (the new example is in $docdir/edgelm.toml)"
else
	install -m 0644 "$tmp/edgelm.toml" "$DESTDIR$confdir/edgelm.toml"
	say "$confdir/edgelm.toml"
fi

install -d -m 0755 "$DESTDIR$LOCALSTATEDIR/lib/edgelm/models"
say "$LOCALSTATEDIR/lib/edgelm/models (put model.gguf here)"

if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ]; then
	if command -v systemd-sysusers >/dev/null 2>&1; then
		systemd-sysusers "$PREFIX/lib/sysusers.d/edgelm.conf"
	fi
	if command -v systemd-tmpfiles >/dev/null 2>&1; then
		systemd-tmpfiles --create "$PREFIX/lib/tmpfiles.d/edgelm.conf" || true
	fi
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl daemon-reload
	fi
	say "done; nothing was started. Next: systemctl enable --now edgelm.socket"
else
	say "done (staged; create the user with systemd-sysusers on the target)"
fi
