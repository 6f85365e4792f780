#!/usr/bin/env bash
# Train on this machine's CPU (or its one GPU) with the project's virtualenv.
#   launch/local.sh configs/news.py workdirs/news [--config.train.num_steps=100 ...]
# FAKE_DEVICES=8 splits the CPU into 8 XLA devices, to try data-parallel sharding locally.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:?usage: launch/local.sh CONFIG WORKDIR [overrides...]}
workdir=${2:?usage: launch/local.sh CONFIG WORKDIR [overrides...]}
shift 2
if [[ -n "${FAKE_DEVICES:-}" ]]; then
  export XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=${FAKE_DEVICES}"
  export JAX_PLATFORMS=cpu
fi
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m jaxrec.main --config="$config" --workdir="$workdir" "$@"
