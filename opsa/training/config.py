"""Training settings: one pydantic model per stage; an out-of-range value fails naming its key."""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from opsa.distill.divergence import DivergenceName
from opsa.errors import InputError, first_error


class TrainConfig(BaseModel):
    """What every full-parameter run shares: optimiser, schedule, batching, checkpoints."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    lr: float = Field(1e-5, gt=0.0, le=1.0)
    weight_decay: float = Field(0.01, ge=0.0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = Field(1e-8, gt=0.0)
    grad_clip: float = Field(1.0, gt=0.0)
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_ratio: float = Field(0.1, ge=0.0, le=1.0, description="cosine: warm-up share")
    warmup_steps: int = Field(10, ge=0, description="constant: linear warm-up steps")
    batch_size: int = Field(4, ge=1, description="prompts per optimiser step (paper: 64)")
    micro_batch_size: int = Field(4, ge=1, description="sequences per forward/backward")
    epochs: int = Field(1, ge=1, description="passes over the prompts (paper: 3)")
    prompt_fraction: float = Field(
        1.0, gt=0.0, le=1.0, description="train on this seeded share of the items (size sweep)"
    )
    max_steps: int | None = Field(None, ge=1, description="stop early after this many steps")
    drop_last_batch: bool = Field(False, description="skip each epoch's incomplete last batch")
    checkpoint_every: int = Field(50, ge=1)
    keep_checkpoints: int = Field(1, ge=1)
    mixed_precision: Literal["no", "bf16"] = Field(
        "no",
        description="compute precision: bf16 autocast (DeepSpeed bf16 on GPUs) over fp32 master "
        "weights and optimiser state; the student is always stored in fp32",
    )
    gradient_checkpointing: bool = False
    zero_stage: Literal[2, 3] = Field(2, description="DeepSpeed ZeRO stage (several GPUs)")
    loss_chunk_size: int = Field(256, ge=1, description="token positions per loss chunk")
    max_prompt_tokens: int = Field(2048, ge=1, description="longer prompts are an error")
    trust_remote_code: bool = False
    cpu_threads: int | None = Field(
        None, ge=1, description="torch CPU threads (1 is fastest on a busy shared machine)"
    )
    report_to: list[Literal["tensorboard", "wandb"]] = Field(
        default_factory=list,
        description="accelerate trackers for the per-step log (under the work dir's trackers/)",
    )

    @model_validator(mode="after")
    def _micro_divides_batch(self) -> TrainConfig:
        if self.batch_size % self.micro_batch_size:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be a multiple of micro_batch_size "
                f"({self.micro_batch_size})"
            )
        return self


class SFTConfig(TrainConfig):
    """Supervised fine-tuning on (prompt, response) pairs: loss on response tokens only."""

    max_response_tokens: int = Field(1024, ge=1, description="longer responses are cut")


class OPSAConfig(TrainConfig):
    """On-policy self-distillation: rollout, teacher scoring and the per-token divergence."""

    temperature: float = Field(0.6, gt=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(32, ge=1)
    rollouts_per_prompt: int = Field(
        1, ge=1, description="student samples per prompt and step, each its own sequence"
    )
    generation_batch_size: int = Field(16, ge=1)
    rollout_sync_every: int = Field(
        1, ge=1, description="vLLM rollouts: push the student's weights every n optimizer steps"
    )
    divergence: DivergenceName = "mixed"
    mixed_forward_weight: float = Field(0.5, ge=0.0, le=1.0, description="w in w*fwd+(1-w)*rev")
    jsd_beta: float = Field(0.5, gt=0.0, lt=1.0)
    estimator: Literal["full", "topk", "topk_tail", "sampled", "restricted"] = Field(
        "topk", description="restricted: token_ids' entries of the full distributions, as is"
    )
    top_k: int = Field(512, ge=1, description="teacher's top-k for the topk estimators")
    token_ids: list[int] | None = Field(None, description="restrict the support to these ids")
    skip_first_tokens: int = Field(0, ge=0)
    teacher: Literal["base", "ema"] = "base"
    teacher_dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="storage of the frozen base teacher (inference only)"
    )
    ema_decay: float = Field(0.99, gt=0.0, lt=1.0)
    reuse_teacher_prefix: bool = Field(
        True,
        description="the frozen teacher encodes each label's shared prompt prefix once (exact)",
    )
    diagnostics_top_tokens: int = Field(50, ge=1)

    @model_validator(mode="after")
    def _estimator_fits(self) -> OPSAConfig:
        if self.estimator == "sampled" and self.divergence != "reverse_kl":
            raise ValueError(
                "estimator 'sampled' estimates reverse KL only: set divergence: reverse_kl"
            )
        if self.estimator == "sampled" and self.token_ids is not None:
            raise ValueError("token_ids restricts a distribution's support: not with 'sampled'")
        if self.estimator == "sampled" and self.top_p < 1.0:
            raise ValueError(
                "estimator 'sampled' needs rollouts from the tempered student itself: top_p 1.0"
            )
        if self.teacher == "ema" and self.teacher_dtype != "float32":
            raise ValueError(
                "teacher 'ema' is updated every step and must stay in fp32: teacher_dtype float32"
            )
        if self.token_ids is not None and not self.token_ids:
            raise ValueError("token_ids is empty")
        if self.estimator == "restricted" and self.token_ids is None:
            raise ValueError("estimator 'restricted' needs token_ids")
        seen: set[int] = set()
        for token in self.token_ids or []:
            if token in seen:
                raise ValueError(f"token_ids: id {token} appears more than once")
            seen.add(token)
        return self


# SafeSteer's published training settings (its code's defaults for Qwen; Llama: lr 1e-6): they
# are its defaults here, over training.common, unless training.safesteer.train sets them
SAFESTEER_PUBLISHED = {"lr": 1e-5, "epochs": 1, "temperature": 1.0, "rollouts_per_prompt": 8}


class SafeSteerConfig(OPSAConfig):
    """SafeSteer: OPSA's loop with a steered teacher and no context; reverse KL restricted to
    the safety tokens (token_ids, from the token selection), not renormalised; by default its
    published lr 1e-5, one epoch, 8 rollouts per prompt at T 1.0."""

    lr: float = Field(SAFESTEER_PUBLISHED["lr"], gt=0.0, le=1.0)
    temperature: float = Field(SAFESTEER_PUBLISHED["temperature"], gt=0.0)
    rollouts_per_prompt: int = Field(SAFESTEER_PUBLISHED["rollouts_per_prompt"], ge=1)
    divergence: DivergenceName = "reverse_kl"
    estimator: Literal["full", "topk", "topk_tail", "sampled", "restricted"] = "restricted"
    steering_coefficient: float = Field(
        1.0, description="the teacher's hidden states at the direction's layer get c x direction"
    )


C = TypeVar("C", bound=TrainConfig)


def parse_config(cls: type[C], data: dict, source: str) -> C:
    """Validate `data` as `cls`; the first problem becomes one InputError line naming its key."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        key, msg = first_error(e)
        raise InputError(f"{source}: {key}: {msg}") from None
