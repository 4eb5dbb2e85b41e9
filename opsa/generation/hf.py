"""HF-transformers generation backend: batched, left-padded, seeded, keeps sampled token ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from opsa.generation.engine import Completion, SamplingParams
from opsa.models.load import load_model, load_tokenizer


class HFGenerator:
    def __init__(self, model: torch.nn.Module, tokenizer: Any, desc: str = "generate") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.desc = desc

    @classmethod
    def from_dir(cls, model_dir: str | Path, trust_remote_code: bool = False) -> HFGenerator:
        tokenizer = load_tokenizer(model_dir, trust_remote_code)
        return cls(load_model(model_dir, trust_remote_code=trust_remote_code), tokenizer)

    def _encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        self.tokenizer.padding_side = "left"
        return self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)

    @torch.inference_mode()
    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        """Generate in batches of similar length; results come back in the prompts' order."""
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: list[list[Completion]] = [[] for _ in prompts]
        eos = self._eos_ids()
        bar = tqdm(total=len(prompts) * params.samples, desc=self.desc, unit="seq")
        for start in range(0, len(order), params.batch_size):
            idx = order[start : start + params.batch_size]
            batch = self._encode([prompts[i] for i in idx])
            torch.manual_seed(params.seed + start)
            sequences = self.model.generate(
                **batch,
                **_generate_kwargs(params),
                num_return_sequences=params.samples,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=sorted(eos),
            )
            new = sequences[:, batch["input_ids"].shape[1] :].tolist()
            for j, ids in enumerate(new):
                out[idx[j // params.samples]].append(self._completion(ids, eos))
            bar.update(len(new))
        bar.close()
        return out

    def _completion(self, ids: list[int], eos: set[int]) -> Completion:
        end = next((k for k, t in enumerate(ids) if t in eos), None)
        kept = ids if end is None else ids[:end]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        return Completion(
            text=text, token_ids=kept, finish_reason="length" if end is None else "stop"
        )

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = set(ids if isinstance(ids, list) else [ids]) - {None}
        return ids | {self.tokenizer.eos_token_id}

    @torch.inference_mode()
    def next_token_logprobs(
        self, prompts: list[str], candidates: list[str], batch_size: int = 8
    ) -> list[list[float]]:
        first = [self.tokenizer.encode(c, add_special_tokens=False)[0] for c in candidates]
        rows: list[list[float]] = []
        for start in tqdm(range(0, len(prompts), batch_size), desc=self.desc, unit="batch"):
            batch = self._encode(prompts[start : start + batch_size])
            # only the last position's logits: never the full B x T x V tensor
            logits = self.model(**batch, logits_to_keep=1).logits[:, -1, :].float()
            rows += torch.log_softmax(logits, dim=-1)[:, first].tolist()
        return rows


def _generate_kwargs(params: SamplingParams) -> dict[str, Any]:
    """Every sampling field set explicitly, so a model's generation_config never leaks in."""
    kwargs: dict[str, Any] = {
        "max_new_tokens": params.max_new_tokens,
        "repetition_penalty": params.repetition_penalty,
    }
    if params.temperature == 0:
        return kwargs | {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    return kwargs | {
        "do_sample": True,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k or None,
    }
