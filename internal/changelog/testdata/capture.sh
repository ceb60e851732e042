#!/bin/bash
# capture.sh: how testdata/real-changelog.txt (MooseFS 3.0.117: the Debian moosefs-master,
# moosefs-chunkserver and moosefs-client 3.0.117 packages) and real-changelog-4.59.2.txt
# (MooseFS 4.59.2 built into /opt/moosefs-4.59.2 by `make deps`) were made. Run as root. Not
# run by the tests.
#
# A master and its client share one network namespace, a chunkserver sits in a second one on a
# veth pair (mfschunkserver refuses a master on 127.0.0.1), all files live under $W. The client
# workload below exercises names that need escaping and most metadata operations (on 4.x also
# its storage classes with descriptions, patterns, archive flags and an idle stretch); the
# captured file is $W/master/changelog.0.mfs (4.59.2: changelog.1.mfs, rotated at the clean
# stop), copied verbatim. 4.59.2's mfstrashtool refuses its own mount (it wants .masterinfo
# of 10 or 14 bytes, the mount has 22), so TRASH_RECOVER and TRASH_REMOVE are not captured.
#
# usage: capture.sh SUFFIX [VERSION]   (SUFFIX makes the namespace names unique, e.g.
# capture.sh 7k3; VERSION is 3.0.117, the default, or 4.59.2)
set -eu
S=${1:?suffix}
V=${2:-3.0.117}
case $V in
3.0.117) SBIN=/usr/sbin BIN=/usr/bin ;;
4.59.2) SBIN=/opt/moosefs-4.59.2/sbin BIN=/opt/moosefs-4.59.2/bin ;;
*) echo "unknown MooseFS version $V (3.0.117 or 4.59.2)" >&2; exit 2 ;;
esac
export PATH=$BIN:$SBIN:$PATH
"$SBIN/mfsmaster" -v | grep -q "version: $V" || { echo "$SBIN/mfsmaster is not MooseFS $V" >&2; exit 2; }
W=/tmp/capchl
NSM=chlm$S; NSC=chlc$S
teardown() {
	set +e
	ip netns exec $NSM umount $W/meta $W/mnt 2>/dev/null
	ip netns exec $NSC mfschunkserver -c $W/mfschunkserver.cfg stop >/dev/null 2>&1
	ip netns exec $NSM mfsmaster -c $W/mfsmaster.cfg stop >/dev/null 2>&1
	ip netns del $NSM 2>/dev/null
	ip netns del $NSC 2>/dev/null
}
trap teardown EXIT
rm -rf $W/master $W/cs $W/csdisk $W/mnt $W/meta
mkdir -p $W/master $W/cs $W/csdisk $W/mnt $W/meta
cat > $W/mfsmaster.cfg <<CFG
WORKING_USER = root
WORKING_GROUP = root
DATA_PATH = $W/master
EXPORTS_FILENAME = $W/mfsexports.cfg
TOPOLOGY_FILENAME = $W/mfstopology.cfg
CFG
echo '* / rw,alldirs,admin,maproot=0:0' > $W/mfsexports.cfg
echo '* . rw' >> $W/mfsexports.cfg
: > $W/mfstopology.cfg
printf 'MFSM NEW' > $W/master/metadata.mfs
cat > $W/mfschunkserver.cfg <<CFG
WORKING_USER = root
WORKING_GROUP = root
DATA_PATH = $W/cs
HDD_CONF_FILENAME = $W/mfshdd.cfg
MASTER_HOST = 10.77.91.1
HDD_LEAVE_SPACE_DEFAULT = 64MiB
CFG
echo "$W/csdisk" > $W/mfshdd.cfg
ip netns add $NSM
ip netns add $NSC
ip link add v$NSM type veth peer name v$NSC
ip link set v$NSM netns $NSM
ip link set v$NSC netns $NSC
ip -n $NSM addr add 10.77.91.1/24 dev v$NSM
ip -n $NSC addr add 10.77.91.2/24 dev v$NSC
for n in $NSM $NSC; do ip -n $n link set lo up; done
ip -n $NSM link set v$NSM up
ip -n $NSC link set v$NSC up
ip netns exec $NSM mfsmaster -c $W/mfsmaster.cfg start
ip netns exec $NSC mfschunkserver -c $W/mfschunkserver.cfg start
for i in $(seq 50); do grep -q 'CSDBOP(3' $W/master/changelog.0.mfs 2>/dev/null && break; sleep 0.2; done

# The client workload, run in the master's namespace (its mounts live in that command's mount
# namespace).
cat > $W/work.sh <<'WORK'
W=/tmp/capchl; M=$W/mnt; V=$1
mfsmount $M -H 10.77.91.1 || exit 1
cd $M
mkdir dir1 dir1/sub
printf 'hello' > $'f,1(%)é\ttab.txt'
echo data > 'with space:colon|pipe.txt'
touch $'nl\nname' $'del\x7f' '[a,b]' 'x=y;z&#~!@$^*+{}[]<>?`"'"'"
python3 - <<'PY'
import os, fcntl
os.chdir("/tmp/capchl/mnt")
open(b"bad\xff\xfeutf8", "w").close()
open("日本語.txt", "w").write("x" * 100000)
os.setxattr("dir1", "user.comment", b"val,ue (%) \x00\x01\xff")
os.setxattr("dir1", "user.plain", b"plain")
os.removexattr("dir1", "user.plain")
with open("dir1/lock", "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    fcntl.flock(f, fcntl.LOCK_UN)
    fcntl.lockf(f, fcntl.LOCK_EX, 10, 5)
    fcntl.lockf(f, fcntl.LOCK_UN, 10, 5)
os.utime("dir1/lock", (1000000000, 1000000001))
import struct
acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in
    [(1, 6, 0xffffffff), (2, 4, 1000), (4, 4, 0xffffffff), (0x10, 4, 0xffffffff), (0x20, 4, 0xffffffff)])
try:
    os.setxattr("dir1/lock", "system.posix_acl_access", acl)
except OSError as e:
    print("acl:", e)
os.mkfifo("fifo1")
os.mknod("dev1", 0o20644, os.makedev(1, 3))
open("L" * 255, "w").close()
PY
mv dir1 'dir 2(renamed)'
ln 'with space:colon|pipe.txt' hard.txt
ln -s '../target,with%odd(chars)é' sym.txt
chmod 600 hard.txt
chown 1000:1000 hard.txt
dd if=/dev/urandom of=big.bin bs=64k count=20 status=none
truncate -s 100000 big.bin
truncate -s 5000000 big.bin
truncate -s 0 'with space:colon|pipe.txt'
if [ "$V" = 3.0.117 ]; then
mfssetgoal 3 big.bin
mfssetgoal -r 2 'dir 2(renamed)'
fi
mfssettrashtime 0 $'del\x7f'
mfssettrashtime -r 3600 'dir 2(renamed)'
mfsseteattr -f noowner big.bin
mfssetquota -i 100 -I 200 -l 1000000 -L 2000000 -p 3600 'dir 2(renamed)'
if [ "$V" = 3.0.117 ]; then
mfsscadmin create -K A,B 'sc,1(x)' || true
mfsscadmin create 2A 'sc2'
else
mfsscadmin create -K A,B -c 'my class, (desc)' -p 5 -o ac -d 2d -T A 'sc,1(x)'
mfsscadmin create -K 2A -A B -d 24 -t 12 'sc2'
mfsscadmin modify -c 'changed%desc' -m s 'sc,1(x)'
fi
mfsscadmin rename sc2 'sc 3'
mfsscadmin copy 'sc 3' sc4
mfsscadmin delete sc4
mfssetsclass 'sc 3' big.bin
if [ "$V" != 3.0.117 ]; then
mfspatadmin create -n '*.tmp' -c 'sc 3' -t 2 -f +noowner
mfspatadmin create -n 'odd,%(name)' -u 1000 -p 10
touch pattern.tmp
mfspatadmin delete -n '*.tmp'
mfsarchive set big.bin
mfsarchive clr big.bin
mfssettrashretention 2 'dir 2(renamed)'
fi
mfsmakesnapshot big.bin snap.bin
setpriv --groups 0,10,20 --reuid 0 --regid 0 mfsmakesnapshot 'dir 2(renamed)' 'snap dir'
mfsappendchunks appended.bin big.bin 日本語.txt
mfsfilerepair appended.bin
mfsfilerepair -f appended.bin || true
rm $'del\x7f' hard.txt
rmdir 'dir 2(renamed)/sub'
rm 'with space:colon|pipe.txt' '[a,b]'
mfssettrashtime 0 sym.txt; rm sym.txt
mfssetquota -d 'dir 2(renamed)' 2>/dev/null || mfsdelquota -a 'dir 2(renamed)' || true
cd /
mfsmount $W/meta -m -H 10.77.91.1 || exit 1
ls -R $W/meta | head -30
find $W/meta/trash -mindepth 2 -maxdepth 2 ! -name undel | while read -r f; do
  case "$f" in *pipe*) mv "$f" "$(dirname "$f")/undel/" ;; *) rm -f "$f" ;; esac
done
ls -R $W/meta | head -30
umount $W/meta
if [ "$V" != 3.0.117 ]; then
  sleep 65 # an idle stretch: IDLE() every 30 s
fi
umount $M
WORK
ip netns exec $NSM bash $W/work.sh $V
teardown
trap - EXIT
# 3.0.117 appends to changelog.0.mfs at the next start; 4.59.2 rotates it at a clean stop.
f=$W/master/changelog.0.mfs; [ -e $f ] || f=$W/master/changelog.1.mfs
echo "captured $(wc -l < $f) lines in $f"
