#!/usr/bin/env bash
# scripts/slurm_ablate.sbatch on a real Slurm: a one-node cluster (munged, slurmctld,
# slurmd) that this script starts as its own children and stops at its end, and the
# guarantees of README "Running on shared machines and clusters", submitted as users type them:
#   1. a 2-variant × 2-seed study as `sbatch --array=0-1`, `npr report` as an afterok job:
#      every cell trained and tested exactly once (one writer), the report written;
#   2. preemption: `scontrol requeue` of a task while its cell trains: npr saves, the task
#      ends 143, Slurm requeues it, and the cell resumes to the same tensors (weights and
#      optimizer state) as an uninterrupted run of the same cell outside Slurm; and
#      `scancel` of another: npr saves, the task ends 143 and stays cancelled;
#   3. time limit: a task submitted with `--time=1` gets the script's USR1 warning, npr
#      saves, the task requeues itself, and the cell is left whole (then given more time,
#      it finishes);
#   4. a duplicate submission of a cell: one task trains it, the other reports it as
#      running elsewhere and ends with 0;
#   5. two more copies of this script (--kill-probe), killed with SIGTERM and with SIGKILL
#      while their Slurm runs a job, leave none of their daemons or job processes alive
#      (checked by pid);
#   6. the script unedited on a GPU and a CPU request: --gres=gpu:1 (a stand-in GPU) and
#      SBATCH_GRES pick cuda:0, no GPU picks cpu, --cpus-per-task sets the threads.
# Usage: scripts/slurm_check.sh   (NPR_SLURM_CHECK_KEEP=1 keeps the temporary folder)
# Installs slurm-wlm and munge with apt-get when missing. Everything Slurm and munge use
# (slurm.conf, munge key and socket, state, spool, logs, pid files) is in one temporary
# folder; /etc/slurm and the system's munged are never read or touched. Jobs and daemons
# are stopped on success, on failure, on Ctrl-C and on SIGTERM; under kill -9 the daemons
# die with this script (setpriv --pdeathsig) and a guard process stops the job processes.
# A Slurm problem of its own (install, a daemon that does not start) is one
# "slurm check FAILED: …" line and exit 1; every wait has a timeout.
# (Slurm holds a requeued job ~2 min before it may start again; the check lifts that delay
# with `scontrol update StartTime=now`, and gives the time-limited task more time once it
# has been requeued, as an operator would.)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"
export PATH="$PATH:/usr/sbin:/sbin"

probe=""
if [ "${1:-}" = "--kill-probe" ]; then probe=${2:?--kill-probe PIDFILE}; fi
tag="slurm check${probe:+ (kill probe)}"
say() { echo "$tag: $*"; }
# To stderr, so that it shows from inside $(…) too (set -e then ends this shell).
die() { echo "$tag FAILED: $*" >&2; exit 1; }
began=$SECONDS
limit=${NPR_SLURM_CHECK_TIMEOUT:-900}
npr=target/release/npr
python="$VIRTUAL_ENV/bin/python"

# --- Slurm and munge -------------------------------------------------------------------
tools="munged munge unmunge slurmctld slurmd sbatch scontrol squeue sinfo scancel"
have_tools() { for t in $tools; do command -v "$t" >/dev/null || return 1; done; }
if ! have_tools; then
  say "installing slurm-wlm and munge (apt-get)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  if ! { timeout 600 $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         timeout 900 $SUDO apt-get install -y -qq slurm-wlm munge; } >/tmp/npr-slurm-apt.log 2>&1; then
    die "apt-get could not install slurm-wlm and munge (log: /tmp/npr-slurm-apt.log)"
  fi
  have_tools || die "slurm-wlm and munge are installed, but one of ($tools) is not on PATH"
fi
# The binary and the venv (torch, safetensors for the tensor checks): scripts/bootstrap.sh
# (.ci/run has run it by now; a second run only checks).
if [ -z "$probe" ] && { [ ! -x "$npr" ] || [ ! -x "$VIRTUAL_ENV/bin/python" ]; }; then
  scripts/bootstrap.sh
fi
setpriv=""
if command -v setpriv >/dev/null && setpriv --pdeathsig KILL true 2>/dev/null; then
  setpriv="setpriv --pdeathsig KILL"
fi

# --- the temporary folder and the processes of this check --------------------------------
work=$(mktemp -d /tmp/npr-slurm-check.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/state" "$work/spool" "$work/log" "$work/munge" "$work/out" "$work/runs"
# Every process started from here on carries this variable (slurmstepd and job processes
# included), which is how the cleanup finds the ones that are not its direct children.
export NPR_SLURM_CHECK="$work"
daemon_pids=(); daemon_names=(); probe_pids=(); probe_wrappers=(); ref_pid=""; guard_pid=""

# Alive and not a zombie. Builtins only (no child process carries the marker by accident).
alive() {
  local stat
  [ -r "/proc/$1/stat" ] && read -r stat 2>/dev/null < "/proc/$1/stat" || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}
# The pids of live processes carrying this check's marker, other than this shell and its
# direct children (the daemons, the probe and the reference run are stopped by pid; the
# rest are short commands of this shell). `ours jobs`: job processes only (not the
# daemons' own children such as slurmscriptd).
ours() {
  local dir pid env stat fd comm
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$pid" = "$$" ] && continue
    read -r stat 2>/dev/null < "$dir/stat" || continue
    stat=${stat##*) }; stat=${stat#* }
    [ "${stat%% *}" = "$$" ] && continue
    # Children of the daemons (slurmscriptd) are ours whatever their environment.
    if [ "${1:-}" != jobs ]; then
      case " ${daemon_pids[*]} " in *" ${stat%% *} "*) alive "$pid" && echo "$pid"; continue ;; esac
    fi
    mapfile -d "" env 2>/dev/null < "$dir/environ" || continue
    case " ${env[*]} " in *" NPR_SLURM_CHECK=$work "*) alive "$pid" && echo "$pid"; continue ;; esac
    # slurmstepd starts with an empty environment; it writes to this check's slurmd.log.
    read -r comm 2>/dev/null < "$dir/comm" && [ "$comm" = slurmstepd ] || continue
    for fd in "$dir"/fd/*; do
      if [ "$fd" -ef "$work/log/slurmd.log" ]; then alive "$pid" && echo "$pid"; break; fi
    done
  done
}
name_of() { local c; read -r c 2>/dev/null < "/proc/$1/comm" && echo "$c" || echo "?"; }
# Waits up to $2 seconds for pid $1 to end.
gone_within() {
  local until=$((SECONDS + $2))
  while alive "$1"; do [ $SECONDS -lt $until ] || return 1; sleep 0.2; done
}

cleanup() {
  local rc=$? i pid left=""
  trap - EXIT
  # Only this shell cleans up (a subshell that fails before its command starts would
  # otherwise run the trap too).
  [ "$BASHPID" = "$$" ] || exit "$rc"
  trap '' INT TERM
  set +e
  [ -n "$guard_pid" ] && kill -KILL "$guard_pid" 2>/dev/null && wait "$guard_pid" 2>/dev/null
  for pid in "${probe_pids[@]}"; do
    alive "$pid" && kill -TERM "$pid"
  done
  for pid in "${probe_pids[@]}"; do
    gone_within "$pid" 40 || kill -KILL "$pid"
  done
  for pid in "${probe_wrappers[@]}"; do
    gone_within "$pid" 5 || kill -KILL "$pid"
    wait "$pid" 2>/dev/null
  done
  if [ -n "$ref_pid" ] && alive "$ref_pid"; then
    kill -TERM "$ref_pid"; gone_within "$ref_pid" 10 || kill -KILL "$ref_pid"
  fi
  # Jobs first (their npr saves on SIGTERM), then the daemons, newest first.
  if [ ${#daemon_pids[@]} -ge 2 ] && alive "${daemon_pids[1]}"; then
    timeout 10 scancel --user="$(id -un)" 2>/dev/null
    local until=$((SECONDS + 15)) jobs
    while :; do
      jobs=$(ours jobs)
      [ -n "$jobs" ] && [ $SECONDS -lt $until ] || break
      sleep 0.3
    done
  fi
  for ((i = ${#daemon_pids[@]} - 1; i >= 0; i--)); do
    pid=${daemon_pids[i]}
    if alive "$pid"; then
      kill -TERM "$pid"; gone_within "$pid" 10 || kill -KILL "$pid"
    fi
    wait "$pid" 2>/dev/null
  done
  for pid in $(ours); do kill -KILL "$pid" 2>/dev/null; done
  # A slurmstepd outlives its slurmd by a moment, and an exiting one is no longer
  # recognisable by its log: give those younger than this check up to 10 s to end before
  # counting. Only wait: a kill probe runs beside the main check, whose job steps are also
  # younger than the probe and must not be touched.
  local young=() until=$((SECONDS + 10))
  while :; do
    mapfile -t young < <(ps -C slurmstepd -o pid=,etimes= 2>/dev/null | awk -v age="$SECONDS" '$2 <= age {print $1}')
    [ ${#young[@]} -gt 0 ] && [ $SECONDS -lt $until ] || break
    sleep 0.3
  done
  sleep 0.3
  for pid in "${daemon_pids[@]}" "${probe_pids[@]}" "${probe_wrappers[@]}" $ref_pid $(ours); do
    alive "$pid" && left+=" $(name_of "$pid")($pid)"
  done
  if [ -n "$left" ]; then
    echo "$tag FAILED: still running after the cleanup:$left"
    rc=1
  elif [ ${#daemon_pids[@]} -gt 0 ]; then
    local list=""
    for i in "${!daemon_pids[@]}"; do list+=" ${daemon_names[i]} (pid ${daemon_pids[i]}),"; done
    say "stopped${list%,}; no process of this check is left"
  fi
  if [ "$rc" -eq 1 ] || [ -n "${NPR_SLURM_CHECK_KEEP:-}" ]; then
    say "kept $work (logs in $work/log, job output in $work/out)"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted (SIGINT)"; exit 130' INT
trap 'say "terminated (SIGTERM)"; exit 143' TERM

# --- a one-node Slurm --------------------------------------------------------------------
start_daemon() { # NAME COMMAND...: a child of this shell, output in log/NAME.out
  local name=$1; shift
  $setpriv "$@" > "$work/log/$name.out" 2>&1 &
  daemon_pids+=($!); daemon_names+=("$name")
}
last_line() { cat "$@" 2>/dev/null | grep -v '^$' | tail -n 1; }
check_daemons() {
  local i
  for i in "${!daemon_pids[@]}"; do
    alive "${daemon_pids[i]}" || die "${daemon_names[i]} exited at start: $(last_line "$work/log/${daemon_names[i]}.out" "$work/log/${daemon_names[i]}.log")"
  done
}
free_ports() { # two distinct free TCP ports
  "$python" -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])'
}

sock="$work/munge/munge.socket"
head -c 1024 /dev/urandom > "$work/munge/munge.key"
chmod 600 "$work/munge/munge.key"
start_daemon munged munged --foreground --force --key-file="$work/munge/munge.key" \
  --socket="$sock" --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" \
  --seed-file="$work/munge/munged.seed"
until=$((SECONDS + 15))
until [ -S "$sock" ] && munge -n -S "$sock" 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1; do
  check_daemons
  [ $SECONDS -lt $until ] || die "munged did not answer on $sock within 15 s"
  sleep 0.2
done

node=$(uname -n); node=${node%%.*}
cpus=$(nproc); [ "$cpus" -ge 4 ] || cpus=4
user=$(id -un)
read -r ctld_port slurmd_port < <(free_ports)
export SLURM_CONF="$work/slurm.conf"
: > "$work/plugstack.conf"
echo "NodeName=$node Name=gpu File=/dev/null" > "$work/gres.conf"
cat > "$SLURM_CONF" <<EOF
# One-node Slurm of scripts/slurm_check.sh: everything under $work.
ClusterName=nprcheck
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
PlugStackConfig=$work/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# At least 4 one-CPU tasks at once (they time-share this machine's cores).
SlurmdParameters=config_overrides
ReturnToService=2
# SIGTERM to SIGKILL: time enough for npr to save a small model.
KillWait=10
OverTimeLimit=0
MinJobAge=900
# A stand-in GPU (gres.conf: /dev/null), so that --gres=gpu:1 is granted as on a GPU
# partition; only a stub npr runs on it (section 6).
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
start_daemon slurmctld slurmctld -D -f "$SLURM_CONF"
start_daemon slurmd slurmd -D -f "$SLURM_CONF" -N "$node"
until=$((SECONDS + 40))
until [ "$(timeout 5 sinfo -h -n "$node" -o %T 2>/dev/null)" = idle ]; do
  check_daemons
  [ $SECONDS -lt $until ] || die "the node did not come up within 40 s ($(timeout 5 sinfo -h -o '%T %E' 2>&1 | head -1); slurmd: $(last_line "$work/log/slurmd.log"))"
  sleep 0.3
done
# The guard: when this shell is gone without its cleanup (kill -9), the daemons die with it
# (setpriv --pdeathsig) and the guard stops the rest: the probe (which then cleans up after
# itself), the job processes and slurmstepd, then removes the folder.
main_pid=$$
(
  trap '' INT TERM
  set +e
  unset NPR_SLURM_CHECK # its own sleeps are not processes of the check
  while alive "$main_pid"; do sleep 0.5; done
  for p in $(cat "$work/probe.pid" 2>/dev/null); do alive "$p" && kill -TERM "$p"; done
  for p in $(cat "$work/probe.pid" 2>/dev/null); do gone_within "$p" 40 || kill -KILL "$p"; done
  for pid in "${daemon_pids[@]}" $(ours); do kill -KILL "$pid" 2>/dev/null; done
  sleep 1
  for pid in $(ours); do kill -KILL "$pid" 2>/dev/null; done
  rm -rf "$work"
) > /dev/null 2>&1 &
guard_pid=$!

say "Slurm $(slurmctld -V | awk '{print $2}') up on $node ($cpus CPUs): munged pid ${daemon_pids[0]}, slurmctld pid ${daemon_pids[1]}, slurmd pid ${daemon_pids[2]} (config $SLURM_CONF)"

# --- job helpers ---------------------------------------------------------------------------
sb() { local id; id=$(timeout 30 sbatch --parsable "$@") || die "sbatch $* failed"; echo "${id%%;*}"; }
# FIELD of job JOB (an id or ARRAY_TASK), from scontrol.
field() { timeout 10 scontrol -o show job "$1" 2>/dev/null | head -n 1 | grep -o " $2=[^ ]*" | cut -d= -f2- || true; }
check_time() { [ $((SECONDS - began)) -lt "$limit" ] || die "timed out after $limit s ($*)"; }
finished_states="COMPLETED FAILED CANCELLED TIMEOUT NODE_FAIL OUT_OF_MEMORY PREEMPTED BOOT_FAIL DEADLINE"
wait_done() { # JOB SECONDS: until the job has ended; its state in $STATE
  local until=$((SECONDS + $2)) s
  while :; do
    s=$(field "$1" JobState)
    case " $finished_states " in *" $s "*) STATE=$s; return ;; esac
    [ $SECONDS -lt $until ] || die "job $1 still ${s:-unknown} after $2 s (output in $work/out)"
    check_time "job $1"; sleep 0.5
  done
}
wait_grep() { # FILE REGEX SECONDS WHAT
  local until=$((SECONDS + $3))
  until grep -Eq -- "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $until ] || die "$4: no /$2/ in $1 after $3 s"
    check_time "$4"; sleep 0.2
  done
}
expect() { # JOB STATE EXIT RESTARTS (EXIT may be a pattern)
  local s e r
  s=$(field "$1" JobState); e=$(field "$1" ExitCode); r=$(field "$1" Restarts)
  # shellcheck disable=SC2053
  [[ "$s" = "$2" && "$e" == $3 && "$r" = "$4" ]] \
    || die "job $1: $s, exit $e, restarts $r; expected $2, exit $3, restarts $4"
}
# One check of scripts/slurm_check.py; its line in $CHECKED.
check() { CHECKED=$("$python" scripts/slurm_check.py "$@") || die "${CHECKED#FAILED: }"; }
cells=()

# --- kill probe: a Slurm with a running job, until this copy is terminated --------------
if [ -n "$probe" ]; then
  j=$(sb --output="$work/out/sleep-%j.out" --wrap "sleep 600")
  until [ "$(field "$j" JobState)" = RUNNING ]; do check_time "probe job"; sleep 0.2; done
  stepd() { local p; for p in $(ours); do [ "$(name_of "$p")" = slurmstepd ] && return 0; done; return 1; }
  until stepd; do check_time "probe job processes"; sleep 0.2; done
  sleep 1
  printf '%s\n' "${daemon_pids[@]}" $(ours) | sort -u > "$probe.tmp"
  mv "$probe.tmp" "$probe"
  while :; do sleep 0.2; done
fi

# The kill probes run beside the rest and are killed once the study is through. Each runs
# under a small bash that records its pid and exit status (and keeps bash's "Killed"
# notice out of this output).
for sig in TERM KILL; do
  bash -c '"$0" --kill-probe "$1" > "$2" 2>&1 & echo $! > "$3"; wait $!; echo $? > "$4"' \
    "$REPO/scripts/slurm_check.sh" "$work/probe-$sig.pids" "$work/out/probe-$sig.out" \
    "$work/probe-$sig.pid" "$work/probe-$sig.rc" 2>/dev/null &
  probe_wrappers+=($!)
done
i=0
for sig in TERM KILL; do
  until [ -s "$work/probe-$sig.pid" ]; do
    alive "${probe_wrappers[i]}" || [ -s "$work/probe-$sig.pid" ] || die "the kill probe did not start"
    check_time "kill probe start"; sleep 0.1
  done
  i=$((i + 1))
  probe_pids+=("$(cat "$work/probe-$sig.pid")")
  echo "${probe_pids[-1]}" >> "$work/probe.pid"
done

# --- a tiny benchmark and study --------------------------------------------------------
"$npr" synth --out "$work/synth" --seed 3 --size 32 --classes 2 --train-per-class 8 \
  --val-per-class 4 --test-per-family 2 > /dev/null
cat > "$work/base.yaml" <<EOF
name: slurm_check
model: { backbone: npr_resnet50, fusion: single, scales: [0.5] }
data: { dataroot: $work/synth, load_size: 32, crop_size: 24, workers: 1 }
train: { recipe: official, epochs: 1, batch_size: 8, log_every: 1, seed: 5 }
test: { batch_size: 16, sets: [ { name: synth, dataroot: $work/synth/test, resize: false, crop: none } ] }
EOF
cat > "$work/study.yaml" <<EOF
base: base.yaml
seeds: [0, 1]
variants:
  - name: baseline
    set: [model.fusion=single, "model.scales=[0.5]"]
  - name: attention
    set: [model.fusion=attention, "model.scales=[0.25, 0.5, 1.0]"]
EOF
study="$work/study.yaml"
runs="$work/runs"
out="$work/out"
ablate=scripts/slurm_ablate.sbatch
# Training lengths (batches of 2: 16 steps an epoch), long enough to be interrupted: about
# 4 s, 40 s and 10 s of training on a 2-core VM. The time-limit cell must still train
# when Slurm's warning comes (within 30 s of the start: slurmctld checks limits every 30 s,
# and with --time=1 the first check sends it); on a faster machine it is tried again longer.
preempt_epochs=16 timelimit_epochs=${NPR_SLURM_CHECK_TIMELIMIT_EPOCHS:-100} duplicate_epochs=40

# 3. starts first (its cell is the longest); section 3 below follows it.
long=(--set train.batch_size=2)
submit_timelimit() { # FOLDER
  timelimit_job=$(sb --array=0 --time=1 --output="$out/slurm-%A_%a.out" $ablate "$study" "$1" \
    --variants baseline --seeds 1 --set train.epochs=$timelimit_epochs "${long[@]}")
  tcell="$1/baseline_seed1"
}
submit_timelimit "$runs/timelimit"

# 1. The study as an array job and the report after it.
study_job=$(sb --array=0-1 --output="$out/slurm-%A_%a.out" $ablate "$study" "$runs/study")
report_job=$(sb --dependency=afterok:$study_job --output="$out/report-%j.out" \
  --wrap "$npr report --runs $runs/study --out $work/report")
say "1. study: array job $study_job (tasks ${study_job}_0, ${study_job}_1), report job $report_job (afterok)"

wait_done "$report_job" 300
for t in 0 1; do expect "${study_job}_$t" COMPLETED 0:0 0; done
[ "$STATE" = COMPLETED ] || die "report job $report_job: $STATE (see $out/report-$report_job.out)"
[ -s "$work/report/report.md" ] || die "the report job wrote no $work/report/report.md"
for cell in baseline_seed0 baseline_seed1 attention_seed0 attention_seed1; do
  check done "$runs/study/$cell" 1
  cells+=("study/$CHECKED")
  n=$(grep -c '^train: ' "$runs/study/logs/$cell.log" || true)
  m=$(grep -c '^outputs in' "$runs/study/logs/$cell.log" || true)
  [ "$n $m" = "1 1" ] || die "$cell: trained $n time(s), tested $m time(s) (expected once each)"
done
for shard in 0of2 1of2; do
  n=$(grep -c '"status": "trained, tested"' "$runs/study/ablation_shard$shard.json" || true)
  [ "$n" = 2 ] || die "ablation_shard$shard.json: $n cell(s) 'trained, tested', expected 2"
done
say "1. passed: 4 cells trained and tested once each by 2 tasks, report $work/report/report.md written"

until=$((SECONDS + 90))
i=0
for sig in TERM KILL; do
  until [ -s "$work/probe-$sig.pids" ] || ! alive "${probe_pids[i]}"; do
    [ $SECONDS -lt $until ] || die "the kill probe did not bring its Slurm up within 90 s: $(tail -n 1 "$out/probe-$sig.out")"
    sleep 0.3
  done
  kill -$sig "${probe_pids[i]}" 2>/dev/null || true
  i=$((i + 1))
done

# 2. Preemption: Slurm's requeue while the cell trains; the uninterrupted reference of the
# same cell runs outside Slurm meanwhile.
preempt_job=$(sb --array=0 --output="$out/slurm-%A_%a.out" $ablate "$study" "$runs/preempt" \
  --variants attention --seeds 0 --set train.epochs=$preempt_epochs "${long[@]}")
NPR_THREADS=1 "$npr" ablate --config "$study" --out "$runs/reference" --devices cpu --no-test \
  --variants attention --seeds 0 --set train.epochs=$preempt_epochs "${long[@]}" \
  > "$out/reference.out" 2>&1 &
ref_pid=$!
cell="$runs/preempt/attention_seed0"
wait_grep "$runs/preempt/logs/attention_seed0.log" ' step (2[0-9]|[3-9][0-9]) ' 120 "preempt job $preempt_job"
[ "$(field "${preempt_job}_0" JobState)" = RUNNING ] || die "preempt task ${preempt_job}_0 is not running"
timeout 10 scontrol requeue "${preempt_job}_0" || die "scontrol requeue ${preempt_job}_0 failed"
say "2. preemption: scontrol requeue ${preempt_job}_0 while training"
wait_grep "$out/slurm-${preempt_job}_0.out" 'npr ablate exited' 60 "preempt task ${preempt_job}_0"
grep -q 'npr ablate exited 143' "$out/slurm-${preempt_job}_0.out" \
  || die "preempt task ${preempt_job}_0: $(grep 'npr ablate exited' "$out/slurm-${preempt_job}_0.out"), expected 143"
until [ "$(field "${preempt_job}_0" JobState)" = PENDING ]; do check_time "requeue of $preempt_job"; sleep 0.3; done
grep -q 'interrupt: finishing the current step and saving' "$runs/preempt/logs/attention_seed0.log" \
  || die "preempt cell: npr train never got the SIGTERM"
check stopped "$cell"
say "2. $CHECKED; the task ended 143 and is $(field "${preempt_job}_0" JobState) (restarts $(field "${preempt_job}_0" Restarts))"
timeout 10 scontrol update JobId="${preempt_job}_0" StartTime=now  # skip Slurm's ~2 min requeue delay

# 3. Time limit: the USR1 warning requeues the task; a stop before the cell started (the
# warning may come in the task's first second) is requeued too, and tried again.
tries=0 longer=0
while :; do
  tries=$((tries + 1))
  until [ "$(field "${timelimit_job}_0" Restarts)" = "$tries" ] \
        && [ "$(field "${timelimit_job}_0" JobState)" = PENDING ]; do
    s=$(field "${timelimit_job}_0" JobState)
    case " $finished_states " in *" $s "*)
      [ "$s" = COMPLETED ] && [ $longer -lt 2 ] \
        || die "time-limit task ${timelimit_job}_0 ended $s without a requeue (NPR_SLURM_CHECK_TIMELIMIT_EPOCHS sets its length)"
      longer=$((longer + 1)) tries=1 timelimit_epochs=$((timelimit_epochs * 3))
      say "3. task ${timelimit_job}_0 finished its cell before the time-limit warning; again with $timelimit_epochs epochs"
      submit_timelimit "$runs/timelimit$longer"
      ;;
    esac
    check_time "time limit of $timelimit_job"; sleep 0.5
  done
  grep -q 'slurm_ablate: time limit (USR1)' "$out/slurm-${timelimit_job}_0.out" \
    || die "time-limit task: the script never got the USR1 warning"
  grep -q "slurm_ablate: requeued job" "$out/slurm-${timelimit_job}_0.out" \
    || die "time-limit task: the script did not requeue itself"
  if [ -f "$tcell/last.safetensors" ]; then break; fi
  [ $tries -lt 4 ] || die "time-limit task: stopped $tries times before its cell started training"
  say "3. the time-limit warning came before the cell started; requeued, trying again"
  timeout 10 scontrol update JobId="${timelimit_job}_0" StartTime=now
done
grep -q 'npr ablate exited 143' "$out/slurm-${timelimit_job}_0.out" \
  || die "time-limit task: npr ablate did not exit 143"
say "3. time limit: task ${timelimit_job}_0 (--time=1) got USR1, saved, requeued itself (restarts $tries)"
check stopped "$tcell"
say "3. $CHECKED"
# Given more time (the check's shortcut, as an operator would), it finishes.
timeout 10 scontrol update JobId="${timelimit_job}_0" TimeLimit=20 StartTime=now

# 4. A duplicate submission of one cell while it trains.
dup=(--array=0 --output="$out/slurm-%A_%a.out" $ablate "$study" "$runs/duplicate"
     --variants baseline --seeds 0 --set train.epochs=$duplicate_epochs "${long[@]}")
dup_a=$(sb "${dup[@]}")
wait_grep "$runs/duplicate/logs/baseline_seed0.log" ' step [0-9]+ ' 120 "duplicate job $dup_a"
dup_b=$(sb "${dup[@]}")
wait_done "${dup_b}_0" 120
expect "${dup_b}_0" COMPLETED 0:0 0
held=$(grep -o 'baseline_seed0 on cpu: running elsewhere ([^)]*)' "$out/slurm-${dup_b}_0.out" || true)
[ -n "$held" ] || die "duplicate task ${dup_b}_0 did not report the cell as running elsewhere"
[ "$(field "${dup_a}_0" JobState)" = RUNNING ] || die "duplicate: task ${dup_a}_0 was no longer training when ${dup_b}_0 ended"
say "4. duplicate: ${dup_b}_0 ended 0 while ${dup_a}_0 trained: \"$held\""

# 2b. A plain scancel: npr saves, and the task stays cancelled (not requeued).
cancel_job=$(sb --array=0 --output="$out/slurm-%A_%a.out" $ablate "$study" "$runs/cancel" \
  --variants baseline --seeds 2 --set train.epochs=$duplicate_epochs "${long[@]}")
wait_grep "$runs/cancel/logs/baseline_seed2.log" ' step [0-9]+ ' 120 "cancel job $cancel_job"
timeout 10 scancel "${cancel_job}_0" || die "scancel ${cancel_job}_0 failed"
wait_grep "$out/slurm-${cancel_job}_0.out" 'npr ablate exited' 60 "cancelled task ${cancel_job}_0"
sleep 2
expect "${cancel_job}_0" CANCELLED "*" 0
grep -q 'npr ablate exited 143' "$out/slurm-${cancel_job}_0.out" || die "cancelled task: npr ablate did not exit 143"
! grep -q 'requeued job' "$out/slurm-${cancel_job}_0.out" || die "cancelled task ${cancel_job}_0 requeued itself"
check stopped "$runs/cancel/baseline_seed2"
say "2b. scancel ${cancel_job}_0: npr ablate exited 143, the task stays CANCELLED (restarts 0); $CHECKED"

# The long ones to their end.
for j in "${preempt_job}_0" "${timelimit_job}_0" "${dup_a}_0"; do wait_done "$j" 300; done
expect "${preempt_job}_0" COMPLETED 0:0 1
expect "${timelimit_job}_0" COMPLETED 0:0 "$tries"
expect "${dup_a}_0" COMPLETED 0:0 0
check done "$cell" $preempt_epochs
cells+=("preempt/$CHECKED")
grep -q 'resuming at epoch' "$runs/preempt/logs/attention_seed0.log" || die "the preempted cell did not resume"
gone_within "$ref_pid" 300 || die "the reference run did not finish"
wait "$ref_pid" || die "the reference run failed (see $out/reference.out)"
ref_pid=""
check same "$runs/reference/attention_seed0/last.safetensors" "$cell/last.safetensors"
say "2. resumed cell $CHECKED"
check done "$tcell" $timelimit_epochs
cells+=("${tcell#"$runs"/}: ${CHECKED#*: }")
check done "$runs/duplicate/baseline_seed0" $duplicate_epochs
cells+=("duplicate/$CHECKED")
n=$(grep -c '^train: ' "$runs/duplicate/logs/baseline_seed0.log" || true)
[ "$n" = 1 ] || die "duplicate cell: $n training start(s) in its log, expected 1"

# 6. Resources from the submit line or the environment, the script unedited: a stub npr
# shows the devices and threads the script picks (the GPU is the stand-in above).
stub="$work/npr_stub.sh"
printf '#!/bin/sh\necho "stub npr: $* threads=$NPR_THREADS"\n' > "$stub"
chmod +x "$stub"
gpu_job=$(NPR=$stub sb --gres=gpu:1 --cpus-per-task=2 --output="$out/gpu-%j.out" $ablate c o)
cpu_job=$(NPR=$stub sb --cpus-per-task=2 --output="$out/cpu-%j.out" $ablate c o)
env_job=$(NPR=$stub SBATCH_GRES=gpu:1 sb --output="$out/env-%j.out" $ablate c o)
for j in $gpu_job $cpu_job $env_job; do wait_done "$j" 60; expect "$j" COMPLETED 0:0 0; done
grep -q -- '--devices cuda:0 threads=2$' "$out/gpu-$gpu_job.out" || die "--gres=gpu:1: $(grep stub "$out/gpu-$gpu_job.out")"
grep -q -- '--devices cpu threads=2$' "$out/cpu-$cpu_job.out" || die "no GPU: $(grep stub "$out/cpu-$cpu_job.out")"
grep -q -- '--devices cuda:0 threads=1$' "$out/env-$env_job.out" || die "SBATCH_GRES=gpu:1: $(grep stub "$out/env-$env_job.out")"
# Outside Slurm (the script's body run by hand) and with several GPUs.
picks() { env -u SLURM_JOB_ID -u CUDA_VISIBLE_DEVICES -u NPR_DEVICE -u NPR_THREADS NPR=$stub "$@" \
  bash $ablate c o 2>/dev/null | sed -n 's/.*--devices \([^ ]*\) threads=\(.*\)/\1 \2/p'; }
for case in "cpu |" "cuda:0,cuda:1 |CUDA_VISIBLE_DEVICES=2,3" "cuda:1 |NPR_DEVICE=cuda:1" \
            "cuda:0,cuda:1 4|SLURM_JOB_ID=1 SLURM_GPUS_ON_NODE=2 SLURM_CPUS_ON_NODE=8" \
            "cpu 8|SLURM_JOB_ID=1 CUDA_VISIBLE_DEVICES=0 SLURM_CPUS_ON_NODE=8"; do
  want=${case%%|*}; vars=${case#*|}
  got=$(picks $vars)
  [ "$got" = "$want" ] || die "slurm_ablate.sbatch with ${vars:-no variables}: picked '$got', expected '$want'"
done
say "6. devices: --gres=gpu:1 (job $gpu_job) and SBATCH_GRES=gpu:1 (job $env_job) run on cuda:0, no GPU (job $cpu_job) on cpu," \
    "threads from --cpus-per-task; NPR_DEVICE, CUDA_VISIBLE_DEVICES outside Slurm and 2 GPUs as documented"

# 5. The kill probes: SIGTERM runs the probe's cleanup; after SIGKILL its daemons die with
# it and its guard stops the job processes.
i=0
for sig in TERM KILL; do
  pid=${probe_pids[i]}
  gone_within "$pid" 60 || die "the kill probe did not stop within 60 s of SIG$sig"
  wait "${probe_wrappers[i]}" || true
  rc=$(cat "$work/probe-$sig.rc" 2>/dev/null || echo "unknown")
  [ -s "$work/probe-$sig.pids" ] || die "the kill probe never brought its Slurm up: $(tail -n 2 "$out/probe-$sig.out")"
  until=$((SECONDS + 60))
  while :; do
    left=""
    for p in $(cat "$work/probe-$sig.pids"); do alive "$p" && left+=" $(name_of "$p")($p)"; done
    [ -n "$left" ] && [ $SECONDS -lt $until ] || break
    sleep 0.5
  done
  [ -z "$left" ] || die "processes of the probe killed with SIG$sig still run after 60 s:$left"
  want=$([ $sig = TERM ] && echo 143 || echo 137)
  [ "$rc" = "$want" ] || die "the kill probe exited $rc after SIG$sig, expected $want"
  say "5. kill probe, SIG$sig while its job ran: exit $rc, none of its $(wc -l < "$work/probe-$sig.pids")" \
      "processes is left ($(tr '\n' ' ' < "$work/probe-$sig.pids"))"
  i=$((i + 1))
done
probe_pids=() probe_wrappers=()

say "jobs: study $study_job (2 tasks, 0 requeues), report $report_job, preempt ${preempt_job}_0 (1 requeue)," \
    "time limit ${timelimit_job}_0 ($tries requeue(s)), duplicate ${dup_a}_0 (trained) and ${dup_b}_0 (held)," \
    "scancel ${cancel_job}_0 (cancelled, 0 requeues), devices $gpu_job $cpu_job $env_job"
say "cells (final state):"
printf '  %s\n' "${cells[@]}"
say "7 passed, 0 failed in $((SECONDS - began)) s"
