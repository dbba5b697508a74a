#!/usr/bin/env bash
# slurm/local/cluster.sh - real single-node SLURM (Debian 12 slurm-wlm 22.05) on
# loopback, for CI. Debian packages only, no systemd, no docker, runs as root.
#
#   slurm/local/cluster.sh [start|stop|status|restart]      (default: start)
#
# Idempotent: installs missing packages (apt), (re)writes the configs, starts
# only the daemons that are not running, restarts the slurm daemons when the
# generated config changed, waits until the node is idle, runs a smoke job.
#
# Environment knobs (all optional):
#   LOCAL_SLURM_DIR         state/spool/logs/pids/fake-GPU links (/var/tmp/local-slurm)
#   LOCAL_SLURM_ACCOUNTING  slurmdbd (default: MariaDB + slurmdbd, `sacct` works)
#                           | none   (no DB; `sacct` fails -> snakemake needs
#                                     --slurm-status-command squeue)
#   LOCAL_SLURM_GPUS        fake GPUs (default 2; 0 = no GRES). They are symlinks
#                           to /dev/null, so CUDA_VISIBLE_DEVICES is set, no CUDA.
#   LOCAL_SLURM_CPUS        default: detected by `slurmd -C`
#   LOCAL_SLURM_MEM_MB      default: 80% of RealMemory from `slurmd -C`
#   LOCAL_SLURM_OVERSIZE    1 = advertise LOCAL_SLURM_CPUS / LOCAL_SLURM_MEM_MB even when larger
#                           than the machine (SlurmdParameters=config_overrides, no CPU
#                           binding), so a profile written for GPU nodes runs unchanged
#   LOCAL_SLURM_PARTITION   default: debug (the default partition)
#   LOCAL_SLURM_GPU_PARTITION  a second partition on the same node, for GPU jobs (default: none);
#                           e.g. cpu + gpu, as the shipped profile routes them
#   LOCAL_SLURM_CLUSTER     default: localci
#   LOCAL_SLURM_SMOKE       1 (default) = run an srun + sbatch (+ sacct) check after start
#
# Every daemon listens on 127.0.0.1 only (6817 slurmctld, 6818 slurmd,
# 6819 slurmdbd); MariaDB runs with --skip-networking (unix socket only); munge
# uses a unix socket. The slurm daemons run in their own UTS namespace with
# hostname "localhost", so the bind address (NoInAddrAny / NoCtldInAddrAny uses
# gethostname()) is 127.0.0.1 whatever the machine's hostname resolves to.
set -euo pipefail

DIR=${LOCAL_SLURM_DIR:-/var/tmp/local-slurm}
ACCT=${LOCAL_SLURM_ACCOUNTING:-slurmdbd}
NGPU=${LOCAL_SLURM_GPUS:-2}
PART=${LOCAL_SLURM_PARTITION:-debug}
GPU_PART=${LOCAL_SLURM_GPU_PARTITION:-}
CLUSTER=${LOCAL_SLURM_CLUSTER:-localci}
SMOKE=${LOCAL_SLURM_SMOKE:-1}
CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
MYSQL_SOCK=/run/mysqld/mysqld.sock
DB_PASS=slurm-ci-local   # socket-only DB on a throwaway CI box

log() { printf '[local-slurm %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
case "$ACCT" in slurmdbd|none) ;; *) die "LOCAL_SLURM_ACCOUNTING must be slurmdbd or none";; esac

# pid_alive PIDFILE [COMM]: process in PIDFILE exists (and is named COMM)
pid_alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null || return 1
  [ -z "${2:-}" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
  log "$what ok"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Run a daemon in a private UTS namespace whose hostname is "localhost".
in_localhost_uts() {
  if unshare --uts true 2>/dev/null; then
    unshare --uts /bin/sh -c 'hostname localhost && exec "$@"' sh "$@"
  else
    log "WARNING: unshare --uts not permitted; daemons bind to $(hostname)'s address"
    "$@"
  fi
}

stop_pidfile() {  # stop_pidfile NAME PIDFILE   (NAME = process comm)
  local name=$1 pf=$2 pid i
  pid_alive "$pf" "$name" || { rm -f "$pf"; return 0; }
  pid=$(cat "$pf")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then log "$name ($pid) ignored TERM, sending KILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$pf"
  log "stopped $name ($pid)"
}

install_pkgs() {
  local need=() p
  for p in munge slurmctld slurmd slurm-client; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
  done
  if [ "$ACCT" = slurmdbd ]; then
    for p in slurmdbd mariadb-server; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
    done
  fi
  [ ${#need[@]} -eq 0 ] && return 0
  log "apt-get install ${need[*]}"
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then   # keep postinst from starting daemons
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  if ! pid_alive /run/munge/munged.pid munged; then
    runuser -u munge -- /usr/sbin/munged
  fi
  wait_for 10 "munge" sh -c 'munge -n | unmunge' || die "munged did not start (see /var/log/munge/munged.log)"
}

start_mariadb() {
  install -d -o mysql -g root -m 0755 /run/mysqld
  if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi
  if ! mariadb-admin --socket=$MYSQL_SOCK ping >/dev/null 2>&1; then
    setsid /usr/sbin/mariadbd --user=mysql --skip-networking --socket=$MYSQL_SOCK \
      --pid-file=/run/mysqld/mysqld.pid --log-error="$DIR/log/mariadb.err" \
      --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
  fi
  wait_for 60 "mariadb" mariadb-admin --socket=$MYSQL_SOCK ping || die "mariadb did not start ($DIR/log/mariadb.err)"
  mariadb --socket=$MYSQL_SOCK -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

write_if_changed() {  # write_if_changed FILE MODE < content ; returns 0 if changed
  local f=$1 mode=$2 tmp
  tmp=$(mktemp)
  cat > "$tmp"
  if [ -f "$f" ] && cmp -s "$tmp" "$f"; then rm -f "$tmp"; return 1; fi
  install -m "$mode" "$tmp" "$f"; rm -f "$tmp"; return 0
}

write_configs() {  # sets CONF_CHANGED=1 if slurm.conf/gres.conf/slurmdbd.conf changed
  CONF_CHANGED=0
  mkdir -p /etc/slurm "$DIR"/{state,spool,log,run,dev}
  local c topo real mem gres_node="" tres=""
  c=$(slurmd -C | head -n1)
  real=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$c")
  if [ -n "${LOCAL_SLURM_CPUS:-}" ]; then topo="CPUs=$LOCAL_SLURM_CPUS"
  else topo=$(grep -o 'CPUs=.*ThreadsPerCore=[0-9]*' <<<"$c"); fi
  mem=${LOCAL_SLURM_MEM_MB:-$((real * 80 / 100))}
  if [ "$NGPU" -gt 0 ]; then
    local i; for i in $(seq 0 $((NGPU - 1))); do ln -sfn /dev/null "$DIR/dev/fakegpu$i"; done
    gres_node=" Gres=gpu:fake:$NGPU"
  fi

  local gpu_part_line=""
  [ -n "$GPU_PART" ] && gpu_part_line="PartitionName=$GPU_PART Nodes=ALL Default=NO MaxTime=INFINITE State=UP"
  local acct_block task_block="TaskPlugin=task/affinity"
  if [ "${LOCAL_SLURM_OVERSIZE:-0}" = 1 ]; then
    task_block="TaskPlugin=task/none
SlurmdParameters=config_overrides"
  fi
  if [ "$ACCT" = slurmdbd ]; then
    [ "$NGPU" -gt 0 ] && tres="AccountingStorageTRES=gres/gpu,gres/gpu:fake"
    acct_block="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
$tres
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=5"
  else
    acct_block="AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
JobAcctGatherType=jobacct_gather/none"
  fi

  write_if_changed "$CONF" 0644 <<EOF && CONF_CHANGED=1 || true
# generated by dcobench slurm/local/cluster.sh - single node on loopback
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmctldPort=6817
SlurmdPort=6818
MpiDefault=none
ProctrackType=proctrack/linuxproc
$task_block
ReturnToService=2
MailProg=/bin/true
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmdSpoolDir=$DIR/spool
StateSaveLocation=$DIR/state
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
# keep finished jobs visible to squeue for 10 min (snakemake squeue status mode)
MinJobAge=600
GresTypes=gpu
$acct_block
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost $topo RealMemory=$mem$gres_node State=UNKNOWN
PartitionName=$PART Nodes=ALL Default=YES MaxTime=INFINITE State=UP
$gpu_part_line
EOF

  if [ "$NGPU" -gt 0 ]; then
    write_if_changed "$GRES_CONF" 0644 <<EOF && CONF_CHANGED=1 || true
# fake GPUs: symlinks to /dev/null (a char device, which slurmd requires)
NodeName=localhost Name=gpu Type=fake File=$DIR/dev/fakegpu[0-$((NGPU - 1))]
EOF
  else
    write_if_changed "$GRES_CONF" 0644 </dev/null && CONF_CHANGED=1 || true
  fi

  if [ "$ACCT" = slurmdbd ]; then
    write_if_changed "$DBD_CONF" 0600 <<EOF && CONF_CHANGED=1 || true
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
# undocumented for slurmdbd.conf in 22.05, but makes slurmdbd bind the
# address of gethostname() (= localhost in our UTS namespace) instead of 0.0.0.0
CommunicationParameters=NoInAddrAny
SlurmUser=root
DebugLevel=info
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
  fi
}

do_stop() {
  if pid_alive "$DIR/run/slurmctld.pid" slurmctld; then
    scancel --state=PENDING,RUNNING -u root 2>/dev/null || true   # don't leave orphan job steps
  fi
  stop_pidfile slurmd "$DIR/run/slurmd.pid"
  stop_pidfile slurmctld "$DIR/run/slurmctld.pid"
  stop_pidfile slurmdbd "$DIR/run/slurmdbd.pid"
  stop_pidfile mariadbd /run/mysqld/mysqld.pid
  stop_pidfile munged /run/munge/munged.pid
}

do_status() {
  local n pf
  for n in munged:/run/munge/munged.pid mariadbd:/run/mysqld/mysqld.pid \
           slurmdbd:$DIR/run/slurmdbd.pid slurmctld:$DIR/run/slurmctld.pid slurmd:$DIR/run/slurmd.pid; do
    pf=${n#*:}
    if pid_alive "$pf" "${n%%:*}"; then echo "${n%%:*}: running (pid $(cat "$pf"))"; else echo "${n%%:*}: stopped"; fi
  done
  command -v ss >/dev/null && ss -ltnp 2>/dev/null | grep -E 'slurm|maria|munge' || true
  sinfo -N -o '%N %T %c %m %G' 2>/dev/null || true
}

do_start() {
  local t0=$SECONDS
  install_pkgs
  mkdir -p "$DIR"/{state,spool,log,run,dev}
  write_configs
  if [ "$CONF_CHANGED" = 1 ] && { pid_alive "$DIR/run/slurmctld.pid" slurmctld ||
       pid_alive "$DIR/run/slurmd.pid" slurmd || pid_alive "$DIR/run/slurmdbd.pid" slurmdbd; }; then
    log "config changed: restarting slurm daemons"
    stop_pidfile slurmd "$DIR/run/slurmd.pid"
    stop_pidfile slurmctld "$DIR/run/slurmctld.pid"
    stop_pidfile slurmdbd "$DIR/run/slurmdbd.pid"
  fi
  start_munge

  if [ "$ACCT" = slurmdbd ]; then
    start_mariadb
    pid_alive "$DIR/run/slurmdbd.pid" slurmdbd || in_localhost_uts /usr/sbin/slurmdbd
    wait_for 30 "slurmdbd port 6819" port_open 6819 || die "slurmdbd did not start ($DIR/log/slurmdbd.log)"
    if ! sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER"; then
      sacctmgr -i add cluster "$CLUSTER" >/dev/null   # also creates account root + user root
    fi
  elif pid_alive "$DIR/run/slurmdbd.pid" slurmdbd; then
    stop_pidfile slurmdbd "$DIR/run/slurmdbd.pid"
  fi

  pid_alive "$DIR/run/slurmctld.pid" slurmctld || in_localhost_uts /usr/sbin/slurmctld
  wait_for 30 "slurmctld" scontrol ping || die "slurmctld did not start ($DIR/log/slurmctld.log)"
  pid_alive "$DIR/run/slurmd.pid" slurmd || in_localhost_uts /usr/sbin/slurmd -N localhost
  wait_for 60 "node up" sh -c "sinfo -h -N -n localhost -o %T | grep -qxE 'idle|mixed|allocated'" || {
    sinfo -N -l >&2; die "node not up ($DIR/log/slurmd.log, $DIR/log/slurmctld.log)"; }

  if [ "$SMOKE" = 1 ]; then
    local gpuopt=""
    [ "$NGPU" -gt 0 ] && gpuopt="--gpus=1"
    in_localhost_uts srun -N1 -n1 -t 1 $gpuopt true || die "srun smoke test failed"
    # (not `sbatch --wait`: it polls every 10 s)
    local j st=""
    j=$(sbatch --parsable -t 1 -o /dev/null $gpuopt --wrap 'test -n "$SLURM_JOB_ID"')
    for _ in $(seq 1 300); do
      st=$(squeue -t all -h -j "$j" -o %T 2>/dev/null || true)
      case "$st" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL) break;; esac
      sleep 0.2
    done
    [ "$st" = COMPLETED ] || die "sbatch smoke job $j ended as '${st:-unknown}'"
    log "sbatch smoke job $j COMPLETED"
    if [ "$ACCT" = slurmdbd ]; then
      wait_for 30 "sacct" sh -c "sacct -X -n -P -j $j -o State | grep -qx COMPLETED" ||
        die "sacct does not show job $j"
    fi
  fi
  log "local SLURM ready in $((SECONDS - t0))s (accounting=$ACCT, gpus=$NGPU, dir=$DIR)"
}

case "${1:-start}" in
  start)   do_start ;;
  stop)    do_stop ;;
  restart) do_stop; do_start ;;
  status)  do_status ;;
  *) die "usage: $0 [start|stop|status|restart]" ;;
esac
