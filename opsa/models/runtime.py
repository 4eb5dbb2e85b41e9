"""The one owner of how a model runs: device, dtype, attention implementation and generation
backend, for every model a stage loads (policy, student, frozen teacher, guard judge, candidate
writer, rollout engine).

Decisions, from the config's `runtime:` block and `generation.backend`, and the machine:

| setting   | auto on a CUDA machine                               | auto on a CPU       |
|-----------|------------------------------------------------------|---------------------|
| device    | cuda (cuda:LOCAL_RANK under a multi-process launch)  | cpu                 |
| dtype     | bfloat16 (float16 where the GPU has no bf16)         | float32             |
| attention | flash_attention_2 if `flash_attn` imports, else sdpa | sdpa                |
| backend   | vllm if it imports (else hf, with a warning)         | vllm if it imports  |

vLLM generated 3.7-4.4x more tokens/s than HF on this 2-core CPU at the pipeline's batch
shapes (docs/benchmarks.md), so auto picks it wherever it imports. An explicit value is
obeyed, or fails with one line (cuda asked on a machine without it, vllm asked where it is
not installed): on a GPU machine nothing falls back to the CPU silently.
Training asks for its own storage dtype (fp32 master weights for the student, `teacher_dtype`
for the frozen teacher); whether it computes in bf16 is training's own setting
(`training.common.mixed_precision`, autocast), not this dtype.

The CLI makes the runtime of a step current (`using`); stages ask `current()`. Tests swap in a
recording or overriding runtime the same way.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from opsa.errors import InputError
from opsa.generation.kv_budget import FLOOR_MIB, UNSIZED_KV_CACHE_MIB

if TYPE_CHECKING:  # torch and transformers are imported where a model is placed or loaded:
    import torch  # a step that loads none (a pattern judge, data, scoring) starts without them

log = logging.getLogger(__name__)

Role = Literal["policy", "student", "teacher", "judge", "writer", "rollout"]
Backend = Literal["hf", "vllm"]
DTYPES = ("float32", "bfloat16", "float16")


class VLLMSettings(BaseModel):
    """What a vLLM engine needs beyond the model's placement."""

    model_config = ConfigDict(extra="forbid")

    max_model_len: int | None = Field(
        None, ge=16, description="prompt + completion tokens per sequence (None: the model's)"
    )
    gpu_memory_utilization: float = Field(
        0.5, gt=0.0, le=1.0, description="GPU share for weights + KV cache (colocated: keep low)"
    )
    cpu_kv_cache_mib: int | None = Field(
        None,
        ge=1,
        description="KV cache on a CPU, in MiB (None: computed from the batch, the lengths and "
        f"the model, what the engine's sequences need plus a {FLOOR_MIB} MiB floor; "
        f"{UNSIZED_KV_CACHE_MIB} for an engine not told its batch)",
    )
    max_num_seqs: int = Field(64, ge=1, description="sequences decoded together")


class RuntimeConfig(BaseModel):
    """The config's `runtime:` block."""

    model_config = ConfigDict(extra="forbid")

    device: Literal["auto", "cuda", "cpu"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    attention: Literal["auto", "eager", "sdpa", "flash_attention_2"] = "auto"
    vllm: VLLMSettings = VLLMSettings()


@dataclass(frozen=True)
class Placement:
    """Where and how one model runs: its device, the dtype of its weights, its attention."""

    role: Role
    device: torch.device
    dtype: torch.dtype
    attention: str


class Runtime:
    def __init__(
        self, config: RuntimeConfig | None = None, backend: Literal["auto", "hf", "vllm"] = "auto"
    ) -> None:
        self.config = config or RuntimeConfig()
        self.requested_backend = backend

    def device(self) -> torch.device:
        import torch

        cuda = torch.cuda.is_available()
        if self.config.device == "cuda" and not cuda:
            raise InputError("runtime.device: 'cuda' asked, but torch sees no CUDA device")
        if self.config.device == "cpu" or not cuda:
            return torch.device("cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))

    def compute_dtype(self) -> torch.dtype:
        import torch

        if self.config.dtype != "auto":
            return getattr(torch, self.config.dtype)
        if self.device().type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def attention(self) -> str:
        if self.config.attention != "auto":
            return self.config.attention
        import torch

        half = self.compute_dtype() in (torch.bfloat16, torch.float16)
        if self.device().type == "cuda" and half and _importable("flash_attn"):
            return "flash_attention_2"
        return "sdpa"

    def placement(self, role: Role, dtype: str | None = None) -> Placement:
        """The decision for one model; `dtype` overrides the runtime's (training's fp32 master
        weights and its teacher's `teacher_dtype`)."""
        if dtype is not None and dtype not in DTYPES:
            raise InputError(f"{role} dtype '{dtype}': expected one of {', '.join(DTYPES)}")
        import torch

        storage = self.compute_dtype() if dtype is None else getattr(torch, dtype)
        return Placement(role, self.device(), storage, self.attention())

    def backend(self, role: Role) -> Backend:
        """The generation backend for a model in `role`."""
        wanted, has_vllm = self.requested_backend, _importable("vllm")
        if wanted == "vllm" and not has_vllm:
            raise InputError(
                "generation.backend: 'vllm' asked, but vllm is not installed "
                "(pip install -e '.[vllm]' on a CPU, or vllm on a GPU)"
            )
        if role == "rollout" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            if wanted == "vllm":
                raise InputError(
                    "generation.backend: 'vllm' rollouts run beside a single training process "
                    "only (not yet under a multi-process launch); use 'hf' or 'auto'"
                )
            return "hf"
        if wanted != "auto":
            return wanted
        if (
            has_vllm
        ):  # the faster on a GPU, and measured the faster on this CPU (docs/benchmarks.md)
            return "vllm"
        if self.device().type == "cuda":
            log.warning("%s: vllm is not installed; generating with the HF backend", role)
        return "hf"

    def load_model(
        self,
        model_dir: str | Path,
        role: Role,
        trust_remote_code: bool = False,
        dtype: str | None = None,
    ) -> torch.nn.Module:
        """The HF model in `model_dir`, on this runtime's device, dtype and attention."""
        from opsa.models.load import load_model

        p = self.placement(role, dtype)
        model = load_model(model_dir, p.dtype, p.attention, trust_remote_code).to(p.device)
        log.info(
            "%s %s on %s (%s, attention %s)", role, model_dir, p.device, p.dtype, p.attention,
        )  # fmt: skip
        return model

    def load_classifier(self, model_dir: str | Path, role: Role) -> torch.nn.Module:
        """A sequence classifier in `model_dir`, on this runtime's device and dtype."""
        from opsa.models.load import load_classifier

        p = self.placement(role)
        model = load_classifier(model_dir, p.dtype).to(p.device)
        log.info("%s classifier %s on %s (%s)", role, model_dir, p.device, p.dtype)
        return model


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


_current = Runtime()


def current() -> Runtime:
    """The runtime of the running step (auto settings unless the CLI or a test set one)."""
    return _current


@contextmanager
def using(runtime: Runtime) -> Iterator[Runtime]:
    """Make `runtime` current inside the block."""
    global _current
    before, _current = _current, runtime
    try:
        yield runtime
    finally:
        _current = before
