#!/usr/bin/env bash
# Builds MooseFS from its source tarball into PREFIX, once: `make deps` calls it for the
# releases Debian does not ship (4.59.2). Nothing is written inside the checkout.
#
#   build-moosefs.sh VERSION PREFIX TARBALL TARBALL_SHA256 TAR_SHA256 URL
#
# PREFIX/sbin/mfsmaster reporting VERSION (and the other binaries present) means it is built:
# the script only says so. Otherwise the source is TARBALL (checked against TARBALL_SHA256)
# when it exists (../shared/moosefs beside the checkout); else it is fetched from URL (GitHub's
# archive of the release tag) and its uncompressed tar is checked against TAR_SHA256, the
# uncompressed tar of TARBALL: both are `git archive --prefix=moosefs-VERSION/` of the same
# commit, so only the gzip layer may differ. Any mismatch stops with both sums.
set -euo pipefail
version=$1 prefix=$2 tarball=$3 tgz_sha=$4 tar_sha=$5 url=$6

installed() {
	for b in sbin/mfsmaster sbin/mfsmetalogger sbin/mfschunkserver sbin/mfsmetadump bin/mfsmount bin/mfsmakesnapshot; do
		[ -x "$prefix/$b" ] || return 1
	done
	"$prefix/sbin/mfsmaster" -v 2>&1 | grep -q "version: $version-"
}
if installed; then
	echo "MooseFS $version: installed in $prefix"
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "building MooseFS $version into $prefix needs root" >&2; exit 1; }

missing=""
for p in build-essential pkg-config zlib1g-dev libfuse3-dev libpcap-dev; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing build dependencies:$missing"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

work=$(mktemp -d /tmp/mfsha-moosefs-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -f "$tarball" ]; then
	got=$(sha256sum "$tarball" | cut -d' ' -f1)
	[ "$got" = "$tgz_sha" ] || { echo "$tarball: sha256 $got, want $tgz_sha" >&2; exit 1; }
	src=$tarball
else
	echo "$tarball not found: fetching $url"
	command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl ca-certificates >/dev/null; }
	curl -fsSL --retry 3 -o "$work/src.tar.gz" "$url"
	src=$work/src.tar.gz
fi
got=$(gzip -dc "$src" | sha256sum | cut -d' ' -f1)
[ "$got" = "$tar_sha" ] || { echo "$src: uncompressed tar sha256 $got, want $tar_sha (MooseFS $version at tag v$version)" >&2; exit 1; }

echo "building MooseFS $version into $prefix (a few minutes; log: $work/build.log, kept on failure as /tmp/mfsha-moosefs-$version-build.log)"
tar -xzf "$src" -C "$work"
cd "$work/moosefs-$version"
if ! { ./configure --prefix="$prefix" --sysconfdir="$prefix/etc" --localstatedir="$prefix/var" \
		--with-default-user=root --with-default-group=root --with-rootsbindir="$prefix/sbin" \
		--with-systemdsystemunitdir=no --disable-mfsgui --disable-mfscgi &&
	make -j"$(nproc)" && make install; } >"$work/build.log" 2>&1; then
	cp "$work/build.log" "/tmp/mfsha-moosefs-$version-build.log"
	tail -30 "$work/build.log" >&2
	echo "MooseFS $version: build failed (log: /tmp/mfsha-moosefs-$version-build.log)" >&2
	exit 1
fi
installed || { echo "MooseFS $version: built, but $prefix/sbin/mfsmaster -v does not report $version" >&2; exit 1; }
echo "MooseFS $version: installed in $prefix"
