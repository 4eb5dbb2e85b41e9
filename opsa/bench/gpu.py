"""Row 7: the suite on a GPU (Qwen3-0.6B and R1-Distill-Qwen-1.5B architectures, randomly
initialised): not implemented on this CPU-only machine. The row records whether a GPU was
visible, and says plainly that nothing was measured."""

from __future__ import annotations

from typing import Any

from opsa.bench.suite import Settings


def run(settings: Settings) -> dict[str, Any]:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    seen = f"GPU {gpu} visible, but" if gpu else "no GPU on this machine;"
    return {
        "measure": "GPU: vLLM rollout tokens/s, training MFU vs bf16 matmul peak, peak memory",
        "ours": f"not measured: {seen} the GPU suite is not written yet",
        "peer": "–",
        "ratio": None,
        "ratio_text": "–",
        "target": "measured on a GPU",
        "met": None,
        "gpu": gpu,
    }
