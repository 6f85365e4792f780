#!/usr/bin/env bash
# GPU benchmark (one H100 or H200, a few minutes): BERT-base train step with MFU, and PLM-NR
# news training throughput. Needs jax with CUDA, flax, optax and numpy; not TensorFlow.
# Usage: benchmarks/gpu.sh [OUT.json]    (default gpu_results.json)
set -euo pipefail
cd "$(dirname "$0")/.."
# The batch halves on out-of-memory: let XLA take what it needs instead of a fixed share.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export TF_CPP_MIN_LOG_LEVEL=2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
timeout 480 "${PYTHON:-python3}" benchmarks/gpu_bench.py --out="${1:-gpu_results.json}"
