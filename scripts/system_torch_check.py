"""Check that this interpreter has what the GPU check (`python -m opsa bench 7`) imports on a
machine's own torch: torch, transformers and accelerate bring all of it but pydantic.

`python scripts/system_torch_check.py [--gpu]` prints the interpreter, torch, transformers,
the GPU and the rollout backend (vLLM if it imports, else HF), or exits with one line naming
what is missing (or, with --gpu, that torch sees no GPU)."""

import importlib.util
import sys

NEED = ["torch", "transformers", "accelerate", "safetensors", "tokenizers", "numpy", "yaml",
        "tqdm", "jinja2", "psutil", "pydantic"]  # fmt: skip


def main(gpu_required: bool) -> None:
    missing = [m for m in NEED if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(
            f"{sys.executable} lacks {', '.join(missing)} (pip install them; offline from a "
            "wheel: pip install --no-index --find-links DIR NAME)"
        )
    import torch
    import transformers

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    backend = "vllm" if importlib.util.find_spec("vllm") else "hf"
    print(
        f"python {sys.version.split()[0]} ({sys.executable}), torch {torch.__version__}, "
        f"transformers {transformers.__version__}; GPU: {gpu}; rollouts: {backend}",
        flush=True,
    )
    if gpu is None and gpu_required:
        sys.exit(
            f"{sys.executable}'s torch sees no GPU (PYTHON=... picks another interpreter; "
            "--small runs the same code on a CPU)"
        )


if __name__ == "__main__":
    main("--gpu" in sys.argv[1:])
