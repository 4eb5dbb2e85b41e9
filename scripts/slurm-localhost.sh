#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, to try profiles/slurm without a real cluster.
#
#   sudo bash scripts/slurm-localhost.sh start   # installs slurm-wlm and munge if missing
#   sudo bash scripts/slurm-localhost.sh stop    # stops only the daemons `start` started
#
# The node has this machine's cores and memory and SLURM_LOCALHOST_GPUS (default 2) *fake*
# GPUs: SLURM schedules `--gpus` requests on them, but no device is behind them, so jobs run
# on the CPU. Accounting is off, so run Snakemake with `--slurm-status-command squeue`;
# finished jobs stay visible to squeue and `scontrol show job` for an hour (MinJobAge).
# Needs root (daemons, /etc/slurm, /etc/munge). State, logs and pid files go to
# SLURM_LOCALHOST_DIR (default /tmp/opsa-slurm). Tested on Debian bookworm (slurm-wlm 22.05).
set -euo pipefail

STATE=${SLURM_LOCALHOST_DIR:-/tmp/opsa-slurm}
GPUS=${SLURM_LOCALHOST_GPUS:-2}
CONF=/etc/slurm/slurm.conf
MARK="# written by opsa scripts/slurm-localhost.sh"

die() { echo "slurm-localhost: $*" >&2; exit 1; }

install_packages() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return
  command -v apt-get >/dev/null || die "slurmctld/munged missing and no apt-get to install them"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    head -c 1024 /dev/urandom > /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
  fi
  if munge -n >/dev/null 2>&1; then return; fi  # a munged is already serving
  mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
  munged --force --pid-file="$STATE/munged.pid"
  touch "$STATE/started-munged"
}

write_config() {
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
  if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script; not overwriting a real cluster's config"
  fi
  mkdir -p /etc/slurm "$STATE/spool" "$STATE/state" "$STATE/gpu"
  local files=()
  for i in $(seq 0 $((GPUS - 1))); do touch "$STATE/gpu/fake$i"; files+=("$STATE/gpu/fake$i"); done
  cat > "$CONF" <<EOF
$MARK
ClusterName=localhost
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
MinJobAge=3600
GresTypes=gpu
NodeName=$host CPUs=$cpus RealMemory=$mem Gres=gpu:$GPUS State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  local lines=""
  for f in "${files[@]}"; do lines+="NodeName=$host Name=gpu File=$f"$'\n'; done
  printf '%s\n%s' "$MARK" "$lines" > /etc/slurm/gres.conf
}

answering() { timeout 5 sinfo >/dev/null 2>&1; }

wait_idle() {
  for _ in $(seq 1 60); do
    for daemon in slurmctld slurmd; do
      kill -0 "$(cat "$STATE/$daemon.pid" 2>/dev/null || echo 0)" 2>/dev/null ||
        die "$daemon exited: $(grep -m1 fatal "$STATE/$daemon.log" || tail -1 "$STATE/$daemon.log")"
    done
    if timeout 5 sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix)'; then return; fi
    sleep 1
  done
  die "the node did not become idle in 60 s; see $STATE/slurmctld.log and $STATE/slurmd.log"
}

start() {
  [ "$(id -u)" = 0 ] || die "run as root (it starts daemons and writes /etc/slurm)"
  if answering; then die "a SLURM controller is already answering; not starting another"; fi
  mkdir -p "$STATE"
  install_packages
  start_munge
  write_config
  slurmctld
  slurmd
  wait_idle
  sinfo
}

stop_pid() {
  local file=$1
  [ -s "$file" ] || return 0
  local pid
  pid=$(cat "$file")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  if [ -e "$CONF" ] && grep -qF "$MARK" "$CONF" && answering; then
    timeout 10 squeue -h -t PENDING,RUNNING -o %i | xargs -r timeout 10 scancel  # ours only
    sleep 2
  fi
  stop_pid "$STATE/slurmd.pid"
  stop_pid "$STATE/slurmctld.pid"
  if [ -e "$STATE/started-munged" ]; then
    stop_pid "$STATE/munged.pid"
    rm -f "$STATE/started-munged"
  fi
  if [ -e "$CONF" ] && grep -qF "$MARK" "$CONF"; then rm -f "$CONF" /etc/slurm/gres.conf; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) die "usage: slurm-localhost.sh start|stop" ;;
esac
