"""HF-transformers generation backend: batched, left-padded, seeded, keeps sampled token ids.

It runs a model the caller already holds (loaded by the runtime, or the live student)."""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from opsa.generation.engine import (
    Completion,
    SamplingParams,
    completion,
    encode_texts,
    stop_ids,
)


class HFGenerator:
    def __init__(self, model: torch.nn.Module, tokenizer: Any, desc: str = "generate") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.desc = desc

    def _pad(self, prompt_ids: list[list[int]]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer.pad(
            {"input_ids": prompt_ids}, padding_side="left", return_tensors="pt"
        )
        return {k: v.to(self.model.device) for k, v in batch.items()}

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        return self.generate_ids(encode_texts(self.tokenizer, prompts), params)

    @torch.inference_mode()
    def generate_ids(
        self, prompt_ids: list[list[int]], params: SamplingParams
    ) -> list[list[Completion]]:
        """Generate in batches of similar length; results come back in the prompts' order."""
        order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))
        out: list[list[Completion]] = [[] for _ in prompt_ids]
        stops = stop_ids(self.model.generation_config.eos_token_id, self.tokenizer)
        bar = tqdm(total=len(prompt_ids) * params.samples, desc=self.desc, unit="seq")
        for start in range(0, len(order), params.batch_size):
            idx = order[start : start + params.batch_size]
            batch = self._pad([prompt_ids[i] for i in idx])
            torch.manual_seed(params.seed + start)
            sequences = self.model.generate(
                **batch,
                **_generate_kwargs(params),
                num_return_sequences=params.samples,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=stops,
            )
            new = sequences[:, batch["input_ids"].shape[1] :].tolist()
            for j, ids in enumerate(new):
                out[idx[j // params.samples]].append(completion(self.tokenizer, ids, stops))
            bar.update(len(new))
        bar.close()
        return out

    @torch.inference_mode()
    def next_token_logprobs(
        self, prompts: list[str], candidates: list[str], batch_size: int = 8
    ) -> list[list[float]]:
        first = [self.tokenizer.encode(c, add_special_tokens=False)[0] for c in candidates]
        prompt_ids = encode_texts(self.tokenizer, prompts)
        rows: list[list[float]] = []
        for start in tqdm(range(0, len(prompts), batch_size), desc=self.desc, unit="batch"):
            batch = self._pad(prompt_ids[start : start + batch_size])
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
