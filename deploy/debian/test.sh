#!/bin/sh
# test.sh OLD.deb NEW.deb: installs OLD, upgrades to NEW and purges, in a throwaway root, and
# checks it: lintian (no error), systemd-analyze verify on the installed units, and
# systemd-analyze security of each unit, alone and with the failover drop-in (<= 4.0).
#
# The throwaway root is an overlay of / whose writes go to a tmpfs, mounted in a private mount
# namespace (unshare -m): dpkg runs in a chroot of it with the host's tools, and when the
# namespace ends every trace is gone. Needs root.
set -eu

old=$(realpath "$1")
deb=$(realpath "$2")
[ "$(id -u)" = 0 ] || { echo "deb-test: needs root (unshare, mount, chroot)" >&2; exit 1; }
echo "== lintian $deb"
lintian --fail-on error "$deb"

# Nothing from the host is bind-mounted into the root (a fresh proc, a tmpfs /dev with its own
# device nodes), and nothing is deleted: the mounts vanish with the namespace, and only the
# empty directory they sat on is removed afterwards.
top=$(mktemp -d /tmp/mfsha-deb-test.XXXXXX)
status=0
unshare -m --propagation private sh -eu -c '
old=$1 deb=$2 top=$3
mount -t tmpfs tmpfs "$top"
mkdir "$top/upper" "$top/work" "$top/root"
mount -t overlay overlay -o lowerdir=/,upperdir=$top/upper,workdir=$top/work "$top/root"
r=$top/root
mount -t proc proc "$r/proc"
mount -t tmpfs -o mode=0755 devtmp "$r/dev"
mknod -m 666 "$r/dev/null" c 1 3
mknod -m 666 "$r/dev/zero" c 1 5
mknod -m 666 "$r/dev/urandom" c 1 9
mknod -m 666 "$r/dev/random" c 1 8
ln -s /proc/self/fd "$r/dev/fd"
cp "$old" "$r/tmp/mfsha-old.deb"
cp "$deb" "$r/tmp/mfsha.deb"
inroot() { chroot "$r" "$@"; }
fail() { echo "deb-test: FAIL: $*" >&2; exit 1; }

# A root that never had mfsha: remove what the host may have of it (in the overlay only).
inroot dpkg --purge mfsha >/dev/null 2>&1 || true
inroot sh -c "getent passwd mfsha >/dev/null && deluser --quiet --system mfsha >/dev/null 2>&1 || true"
inroot rm -rf /var/lib/mfsha

echo "== install $(basename "$old"), then the upgrade to $(basename "$deb")"
inroot dpkg -i /tmp/mfsha-old.deb
echo "# edited by the operator" >> "$r/etc/mfs/mfsha-ship.cfg"
inroot sh -c "echo \"mfsha-state\" > /var/lib/mfsha/keep"
inroot dpkg -i --force-confold /tmp/mfsha.deb
inroot grep -q "edited by the operator" /etc/mfs/mfsha-ship.cfg || fail "the upgrade replaced a changed conffile"
inroot dpkg-query -W -f="\${Version}\n" mfsha
inroot dpkg -s mfsha | grep -q "^Status: install ok installed" || fail "not installed"
inroot getent passwd mfsha >/dev/null || fail "no system user mfsha"
[ "$(inroot stat -c "%U:%G %a" /var/lib/mfsha)" = "mfsha:mfsha 750" ] || fail "/var/lib/mfsha: $(inroot stat -c "%U:%G %a" /var/lib/mfsha)"
[ "$(inroot stat -c "%U:%G %a" /etc/mfs/mfsha-ship.cfg)" = "root:mfsha 640" ] || fail "/etc/mfs/mfsha-ship.cfg: $(inroot stat -c "%U:%G %a" /etc/mfs/mfsha-ship.cfg)"
inroot mfsha version
inroot sh -c "zcat /usr/share/man/man8/mfsha.8.gz | grep -q \"mfsha ship\"" || fail "man page lacks mfsha ship"
inroot sh -c "zcat /usr/share/doc/mfsha/changelog.gz | head -1"

echo "== systemd-analyze verify"
for u in mfsha-nats mfsha-ship mfsha-standby; do
	inroot systemd-analyze verify --man=no /lib/systemd/system/$u.service || fail "verify $u"
done
echo "== systemd-analyze security (installed units; with the failover drop-in)"
for u in mfsha-nats mfsha-ship mfsha-standby; do
	out=$(systemd-analyze security --offline=yes --root="$r" --threshold=40 $u.service) || fail "$u: exposure above 4.0: $(echo "$out" | tail -1)"
	echo "$out" | tail -1
done
for u in mfsha-ship mfsha-standby; do
	mkdir -p "$r/etc/systemd/system/$u.service.d"
	cp "$r/usr/share/doc/mfsha/examples/failover.conf" "$r/etc/systemd/system/$u.service.d/failover.conf"
	inroot systemd-analyze verify --man=no /lib/systemd/system/$u.service || fail "verify $u with failover.conf"
	out=$(systemd-analyze security --offline=yes --root="$r" --threshold=40 $u.service) || fail "$u with failover.conf: exposure above 4.0: $(echo "$out" | tail -1)"
	echo "$out" | tail -1 | sed "s/: /+failover.conf: /"
	rm -r "$r/etc/systemd/system/$u.service.d"
done


echo "== remove, then purge"
inroot dpkg --remove mfsha
inroot test ! -e /usr/sbin/mfsha || fail "/usr/sbin/mfsha left after remove"
inroot test -e /etc/mfs/mfsha-ship.cfg || fail "remove deleted a conffile"
inroot dpkg --purge mfsha
inroot test ! -e /etc/mfs/mfsha-ship.cfg || fail "purge left /etc/mfs/mfsha-ship.cfg"
inroot test -e /var/lib/mfsha/keep || fail "purge deleted data in /var/lib/mfsha"
inroot sh -c "dpkg -s mfsha 2>/dev/null | grep -q ^Status: && exit 1 || exit 0" || fail "still known to dpkg after purge"
inroot rm /var/lib/mfsha/keep
inroot dpkg -i /tmp/mfsha.deb >/dev/null
inroot dpkg --purge mfsha >/dev/null
inroot test ! -e /var/lib/mfsha || fail "purge left an empty /var/lib/mfsha"
echo "deb-test: OK"
' deb-test "$old" "$deb" "$top" || status=$?
rmdir "$top"
exit $status
