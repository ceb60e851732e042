#!/bin/sh
# manpage.sh BINARY VERSION: prints mfsha(8) in roff, made of the --help texts.
set -eu
bin=$1 version=$2
esc() { sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\\&'/"; }
cat <<HEAD
.TH MFSHA 8 "" "mfsha $version" "System Administration"
.SH NAME
mfsha \- high availability and point-in-time recovery for the MooseFS master
.SH SYNOPSIS
.B mfsha
.I COMMAND
.RI [ flags ]
.SH DESCRIPTION
HEAD
echo ".nf"
"$bin" --help 2>&1 | esc
echo ".fi"
for c in ship standby restore status switchover nats version; do
	echo ".SH \"mfsha $c\""
	echo ".nf"
	"$bin" "$c" --help 2>&1 | esc
	echo ".fi"
done
cat <<'TAIL'
.SH FILES
.TP
.I /etc/mfs/mfsha-ship.cfg, /etc/mfs/mfsha-standby.cfg, /etc/mfs/mfsha-nats.cfg
configurations of the units mfsha-ship, mfsha-standby and mfsha-nats
.TP
.I /var/lib/mfsha
state: the embedded NATS store, the materialized metadata, archived master files
.TP
.I /usr/share/doc/mfsha/README.md
the full documentation, with the runbook
.SH SEE ALSO
.BR mfsmaster (8),
.BR mfsmetalogger (8)
TAIL
