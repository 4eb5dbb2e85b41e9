#!/usr/bin/env bash
# The GPU check (issue 21): row 7 of the benchmark suite (`python -m opsa bench 7`,
# benchmarks/gpu.py) for a randomly initialised Qwen3-0.6B-shaped model, on the machine a user
# actually gets: a preinstalled CUDA torch, transformers and accelerate, no vLLM, no DeepSpeed,
# no internet. Nothing is installed or downloaded: it runs the checkout with PYTHONPATH=. on
# the first Python that has torch (see below), so the system's torch stays as it is.
#
# What it prints: the interpreter, torch/transformers versions, the GPU and the rollout backend
# (vLLM if it imports, else HF with a static KV cache); then the row (`| 7 | ... |`): rollout
# tokens/s, training MFU (forward/backward model FLOP/s over the bf16 matmul peak measured on
# the same GPU), the step time split by phase (rollout, teacher, student_forward,
# loss_backward, optimizer) and peak GPU memory. The full figures (per-step times, profiled top
# kernels, sizes) are in row7_gpu.json, the sides' logs in logs/, table.md beside them.
#
# How long: budgeted for under 8 minutes on one H100 (64 prompts x 256 new tokens of rollouts
# at batch 64, 7 OPSA steps of batch 16 x 128 new tokens; 5 repetitions after 1 warm-up; not
# yet run on a GPU), and stopped after GPU_CHECK_TIMEOUT seconds (default 570) with the logs
# kept. `--small` (shrunken model, tiny sizes, any device) takes about 35 s on a 2-core CPU.
#
# Usage (from anywhere; it runs in the repository root):
#   scripts/gpu_check.sh [--small] [--arch NAME[,NAME...]|all] [--out-dir DIR]
# Results go to --out-dir, else $OUT when set (the GPU lending tool copies $OUT back), else
# results/bench; --small writes to <that>/small. PYTHON=... picks the interpreter (default:
# .venv/bin/python where it exists, else python3). OPSA_BENCH_COMPILE=1 lets transformers
# torch.compile HF decoding on the GPU (off by default: not yet tried on one).
set -euo pipefail
cd "$(dirname "$0")/.."

small=0
arch=qwen3-0.6b
out=${OUT:-results/bench}
while [ $# -gt 0 ]; do
  case "$1" in
    --small) small=1 ;;
    --arch) arch=$2; shift ;;
    --arch=*) arch=${1#--arch=} ;;
    --out-dir) out=$2; shift ;;
    --out-dir=*) out=${1#--out-dir=} ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$arch" = all ] && arch=""
[ "$small" = 1 ] && out="$out/small"

if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
fi
# The checkout itself, not an installed copy (pip is not needed, nor the package's pinned
# torch and Python version); no model hub is reached.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OPSA_BENCH_ARCH="$arch"

# What bench 7's path imports, the interpreter, the GPU and the rollout backend
gpu=--gpu
[ "$small" = 1 ] && gpu=
"$PYTHON" scripts/system_torch_check.py $gpu

if [ "$small" = 1 ]; then
  args=(--small --reps 1 --warmup 0 --threads 2)
  limit=${GPU_CHECK_TIMEOUT:-0}
else
  args=(--reps 5 --warmup 1)
  limit=${GPU_CHECK_TIMEOUT:-570}
fi
echo "bench 7 (${arch:-all architectures}) -> $out"
timeout --foreground -k 30 "$limit" "$PYTHON" -m benchmarks 7 "${args[@]}" --out-dir "$out"
grep '^| 7 |' "$out/table.md"
echo "gpu_check.sh: done in ${SECONDS} s; details in $out/row7_gpu.json"
