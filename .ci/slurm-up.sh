#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the Slurm tests (tests/test_slurm.py), by the
# recipe measured in ../shared/docs/slurm.md: Debian's slurm-wlm daemons and munge, a minimal
# slurm.conf with this host as the only node, daemons started without systemd.
#
# Idempotent: exits 0 at once when `sinfo` already shows a usable node; never overwrites a
# slurm.conf it did not write. Needs root and apt-get; exits non-zero with the reason otherwise
# (.ci/run then warns, and the Slurm tests skip with their reason). Stop the daemons by their pid
# files: kill $(cat /run/slurmd.pid) $(cat /run/slurmctld.pid) $(cat /run/munge/munged.pid)
set -euo pipefail

node_up() { sinfo -h -o %t 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; }

if command -v sinfo >/dev/null && node_up; then
  echo "slurm-up: cluster already up"; sinfo; exit 0
fi
[ "$(id -u)" = 0 ] || { echo "slurm-up: not root: cannot install or start Slurm" >&2; exit 1; }
command -v apt-get >/dev/null || { echo "slurm-up: no apt-get: cannot install Slurm" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
   || ! command -v munged >/dev/null; then
  pkgs=(slurmctld slurmd slurm-client munge)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; }
fi

# munge: the package creates the key; without systemd nothing creates the run directory
[ -f /etc/munge/munge.key ] || /usr/sbin/mungekey --create 2>/dev/null || true
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge
if ! { [ -f /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; }; then
  su -s /bin/sh munge -c /usr/sbin/munged
fi
munge -n | unmunge | grep -q Success || { echo "slurm-up: munge does not authenticate" >&2; exit 1; }

node=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
conf=/etc/slurm/slurm.conf
marker="# written by psychotherapy-in-silico .ci/slurm-up.sh"
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
if [ ! -f "$conf" ] || head -1 "$conf" | grep -qF "$marker"; then
  cat > "$conf" <<EOF
$marker
ClusterName=psysim-ci
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
else
  echo "slurm-up: keeping the existing $conf (not written by this script)"
fi

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
running /run/slurmctld.pid || slurmctld
running /run/slurmd.pid || slurmd
for _ in $(seq 60); do node_up && break; sleep 1; done
if ! node_up; then
  echo "slurm-up: no usable node after 60 s (see /var/log/slurm/)" >&2; sinfo >&2 || true; exit 1
fi
sinfo
