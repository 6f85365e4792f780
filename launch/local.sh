#!/usr/bin/env bash
# Train on this machine: one process, or several that work together as the hosts of a pod would.
#   [PROCESSES=N] [FAKE_DEVICES=M] [PORT=P] launch/local.sh CONFIG WORKDIR [overrides...]
#   launch/local.sh configs/news.py workdirs/news --config.train.num_steps=100
#   PROCESSES=2 FAKE_DEVICES=4 launch/local.sh configs/news.py:tiny workdirs/mp
# FAKE_DEVICES=M splits the CPU into M XLA devices per process, to try sharding locally.
# PROCESSES=N>1 starts N processes that meet at localhost:PORT (default: a free port). Process 0
# prints to the terminal; each process I also appends to WORKDIR/logs/process_I.log. The first
# process to fail takes the others down and its status is the script's. Ctrl-C or SIGTERM asks
# every process to save and stop (status 143: rerun the same command to resume); a second
# Ctrl-C kills them.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: [PROCESSES=N] [FAKE_DEVICES=M] [PORT=P] launch/local.sh CONFIG WORKDIR [overrides...]"
config=${1:?$usage}
workdir=${2:?$usage}
shift 2
python=${PYTHON:-.venv/bin/python}
processes=${PROCESSES:-1}
[[ "$processes" =~ ^[1-9][0-9]*$ ]] || { echo "local.sh: PROCESSES=$processes: want N >= 1" >&2; exit 2; }
if [[ -n "${FAKE_DEVICES:-}" ]]; then
  export XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=${FAKE_DEVICES}"
  export JAX_PLATFORMS=cpu
fi
export TF_CPP_MIN_LOG_LEVEL=2
args=(-m jaxrec.main --config="$config" --workdir="$workdir")
if ((processes == 1)); then
  exec "$python" "${args[@]}" "$@"
fi
if ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 501)); then
  echo "local.sh: PROCESSES>1 needs bash >= 5.1 (for wait -n -p); this is $BASH_VERSION" >&2
  exit 2
fi
port=${PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')}
args+=(--coordinator_address="localhost:$port" --num_processes="$processes")
mkdir -p "$workdir/logs"

# Job control gives each process its own process group: Ctrl-C reaches only this script, which
# decides what the processes get, and a process can be killed together with its children.
set -m
declare -A index # pid -> process id, for the processes still running
for ((i = 0; i < processes; i++)); do
  log="$workdir/logs/process_$i.log"
  if ((i == 0)); then
    "$python" "${args[@]}" --process_id="$i" "$@" </dev/null > >(tee -a "$log") 2>&1 &
  else
    "$python" "${args[@]}" --process_id="$i" "$@" </dev/null >>"$log" 2>&1 &
  fi
  index[$!]=$i
done
echo "local.sh: $processes processes meet at localhost:$port; logs in $workdir/logs/" >&2

stopping=0
kill_all() {
  local pid
  for pid in "${!index[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}
# shellcheck disable=SC2317 # the trap runs it
on_signal() {
  local pid
  if ((stopping)); then
    kill_all
  else
    stopping=1
    echo "local.sh: asking the processes to save and stop (again to kill them)" >&2
    # The trainers only, not their groups: process 0's tee must still print their last words.
    for pid in "${!index[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  fi
}
trap on_signal INT TERM

status=0
note_exit() { # note_exit PID STATUS
  local i=${index[$1]}
  unset "index[$1]"
  ((status == 0)) || return 0
  status=$2
  if ((status != 0 && !stopping)); then
    # The others can neither finish nor save without their peer: kill them outright.
    echo "local.sh: process $i exited with status $status (see $workdir/logs/process_$i.log)" >&2
    stopping=1
    kill_all
  fi
}
while ((${#index[@]})); do
  unset pid
  rc=0
  wait -n -p pid "${!index[@]}" 2>/dev/null || rc=$?
  [[ -z "${pid:-}" ]] || note_exit "$pid" "$rc" # pid stays unset when a trap cuts the wait short
  # bash may already have reported a process that a signal ended, and then `wait -n` no longer
  # sees it; `wait PID` still has its status.
  for pid in "${!index[@]}"; do
    kill -0 "$pid" 2>/dev/null || { rc=0; wait "$pid" 2>/dev/null || rc=$?; note_exit "$pid" "$rc"; }
  done
done
exit "$status"
