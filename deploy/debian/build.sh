#!/bin/sh
# build.sh VERSION BINARY OUTDIR: builds OUTDIR/mfsha_VERSION_ARCH.deb with dpkg-deb from the
# files of this repository (run from its root by `make deb`). Prints the path of the package.
set -eu

version=$1 bin=$2 out=$3
arch=$(dpkg --print-architecture)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
here=deploy/debian

install -d -m 0755 "$root/DEBIAN" "$root/usr/sbin" "$root/lib/systemd/system" "$root/etc/mfs" \
	"$root/usr/share/doc/mfsha/examples" "$root/usr/share/man/man8"
install -m 0755 "$bin" "$root/usr/sbin/mfsha"
for u in nats ship standby; do
	install -m 0644 "deploy/mfsha-$u.service" "$root/lib/systemd/system/mfsha-$u.service"
	install -m 0644 "deploy/mfsha-$u.cfg" "$root/etc/mfs/mfsha-$u.cfg"
done
install -m 0644 deploy/mfsha-failover.conf "$root/usr/share/doc/mfsha/examples/failover.conf"
install -m 0644 deploy/monitoring/mfsha-rules.yml deploy/monitoring/mfsha-dashboard.json "$root/usr/share/doc/mfsha/examples/"
install -m 0644 README.md "$root/usr/share/doc/mfsha/README.md"
install -m 0644 "$here/copyright" "$root/usr/share/doc/mfsha/copyright"
# The changelog (Debian format; changelog.gz: a native package) names the version being built.
sed "1s/(.*)/($version)/" "$here/changelog" | gzip -9n > "$root/usr/share/doc/mfsha/changelog.gz"
chmod 0644 "$root/usr/share/doc/mfsha/changelog.gz"
# The man page is the --help text of the command and of each subcommand.
sh "$here/manpage.sh" "$bin" "$version" | gzip -9n > "$root/usr/share/man/man8/mfsha.8.gz"
chmod 0644 "$root/usr/share/man/man8/mfsha.8.gz"

install -m 0644 "$here/conffiles" "$root/DEBIAN/conffiles"
for s in postinst postrm prerm; do
	install -m 0755 "$here/$s" "$root/DEBIAN/$s"
done
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" "$here/control.in" > "$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"

mkdir -p "$out"
deb="$out/mfsha_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
