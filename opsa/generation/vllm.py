"""vLLM generation backend: the same interface as the HF one, token ids in and out.

- The engine runs in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`): no worker processes to
  spawn (so no entry-point guard is needed), and a trainer can push its weights into it.
- Every sampling field is set explicitly and the engine ignores the model's
  generation_config.json (`generation_config="vllm"`): only the config's sampling applies.
- Prompts go in as token ids (`TokensPrompt`); completions come out as ids, cut at the first
  stop id exactly as the HF backend cuts them, and decoded here.
- On a CPU the KV cache is reserved explicitly (`kv_cache_memory_bytes`): the configured
  MiB, else what the caller's sequences need (`kv_budget`), else its unsized default.
- `vllm` is imported only when this backend is opened: the plain install never needs it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, GenerationConfig

from opsa.errors import InputError
from opsa.generation import kv_budget
from opsa.generation.engine import (
    Completion,
    SamplingParams,
    completion,
    encode_texts,
    stop_ids,
)
from opsa.models.folder import check_weights
from opsa.models.load import load_tokenizer
from opsa.models.runtime import Placement, VLLMSettings

log = logging.getLogger(__name__)


def _drop_tokenizer_warmup_failure(record: logging.LogRecord) -> bool:
    """The engine skips its tokenizer (prompts go in as ids), so vLLM's chat-template warmup
    fails by design and would print a traceback into every job log."""
    return record.getMessage() != "Chat template warmup failed"


class VLLMGenerator:
    def __init__(self, llm: Any, tokenizer: Any, stops: list[int], desc: str = "generate") -> None:
        self.llm = llm
        self.tokenizer = tokenizer
        self.stops = stops
        self.desc = desc

    @classmethod
    def start(
        cls,
        model_dir: str | Path,
        placement: Placement,
        settings: VLLMSettings,
        trust_remote_code: bool = False,
        load_weights: bool = True,
        sequences: int | None = None,
        tokens_per_sequence: int | None = None,
    ) -> VLLMGenerator:
        """An in-process engine for `model_dir`. With `load_weights=False` the weights start
        random (`load_format="dummy"`) until the caller pushes its own (`load_weights`).
        `sequences` of up to `tokens_per_sequence` tokens each, when given, size a CPU
        engine's KV cache (and its max_model_len, unless configured)."""
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        os.environ.pop("VLLM_CPU_KVCACHE_SPACE", None)  # it would override the bytes given
        try:
            from vllm import LLM
            from vllm.platforms import current_platform
        except ImportError as e:
            raise InputError(f"generation.backend 'vllm': vllm does not import ({e})") from None
        if current_platform.device_type != placement.device.type:
            raise InputError(
                f"runtime.device: {placement.device.type} asked, but the installed vllm runs on "
                f"{current_platform.device_type}"
            )
        tokenizer = load_tokenizer(model_dir, trust_remote_code)  # checks config and template
        if load_weights:
            check_weights(Path(model_dir))
        kwargs: dict[str, Any] = {
            "model": str(model_dir),
            "dtype": str(placement.dtype).removeprefix("torch."),
            "trust_remote_code": trust_remote_code,
            "max_model_len": settings.max_model_len,
            "max_num_seqs": settings.max_num_seqs,
            "generation_config": "vllm",
            "enable_prefix_caching": True,
            "skip_tokenizer_init": True,
            "load_format": "auto" if load_weights else "dummy",
            "seed": 0,
        }
        if placement.device.type == "cuda":
            kwargs["gpu_memory_utilization"] = settings.gpu_memory_utilization
        else:
            sizes = (sequences, tokens_per_sequence)
            kwargs |= _cpu_kv_cache(model_dir, placement, settings, sizes, trust_remote_code)
            kwargs["enforce_eager"] = True
            # a chunked prefill rewinds a seeded request's generator, which CPU generators
            # cannot do ("CPU Generator does not use offset"): prefill whole prompts
            kwargs["enable_chunked_prefill"] = False
        logging.getLogger("vllm.renderers.base").addFilter(_drop_tokenizer_warmup_failure)
        with _torch_state_kept():
            try:
                llm = LLM(**kwargs)
            except (ValueError, RuntimeError) as e:
                if not _MEMORY.search(str(e)):
                    raise
                raise InputError(_memory_advice(placement, settings, kwargs)) from None
        return cls(llm, tokenizer, stop_ids(_generation_eos(model_dir), tokenizer))

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        return self.generate_ids(encode_texts(self.tokenizer, prompts), params)

    def generate_ids(
        self, prompt_ids: list[list[int]], params: SamplingParams
    ) -> list[list[Completion]]:
        """`params.samples` completions per prompt; prompt i samples with seed `seed + i`, so
        a completion does not depend on which prompts share its batch."""
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=list(ids)) for ids in prompt_ids]
        sampling = [self._sampling(params, params.seed + i) for i in range(len(prompts))]
        outputs = self.llm.generate(prompts, sampling, use_tqdm=False)
        return [
            [completion(self.tokenizer, list(o.token_ids), self.stops) for o in out.outputs]
            for out in outputs
        ]

    def next_token_logprobs(
        self, prompts: list[str], candidates: list[str], batch_size: int = 8
    ) -> list[list[float]]:
        """Log-probability (full-vocabulary softmax of the raw logits) of each candidate's
        first token after each prompt: one 1-token request per (prompt, candidate), restricted
        to that token; the prefix cache shares the prompt between candidates."""
        from vllm import SamplingParams as VSamplingParams
        from vllm.inputs import TokensPrompt

        first = [self.tokenizer.encode(c, add_special_tokens=False)[0] for c in candidates]
        only = [
            VSamplingParams(
                temperature=0.0, max_tokens=1, allowed_token_ids=[t], logprobs=0, detokenize=False
            )
            for t in first
        ]
        requests, sampling = [], []
        for ids in encode_texts(self.tokenizer, prompts):
            requests += [TokensPrompt(prompt_token_ids=ids) for _ in first]
            sampling += only
        outputs = self.llm.generate(requests, sampling, use_tqdm=False)
        values = [
            out.outputs[0].logprobs[0][token].logprob
            for out, token in zip(outputs, first * len(prompts), strict=True)
        ]
        k = len(first)
        return [values[i : i + k] for i in range(0, len(values), k)]

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy weights (HF parameter names) into the running engine, then drop the prefix
        cache: cached keys and values were computed by the old weights.

        vLLM's in-place reload takes the weights in checkpoint format and re-runs the kernel
        preparation (on a CPU each linear layer's packed oneDNN copy); a tied LM head shares
        the embedding's weight but keeps its own packed copy, so it is prepared again here."""
        named = list(weights)
        if not named:  # an empty iterator would make vLLM reload the checkpoint from disk
            raise ValueError("load_weights: no weights given")
        kwargs = {"weights_iterator": named, "is_checkpoint_format": True}
        self.llm.collective_rpc("reload_weights", kwargs=kwargs)
        self.llm.apply_model(_prepare_embeddings)
        self.llm.reset_prefix_cache()

    def _sampling(self, params: SamplingParams, seed: int) -> Any:
        """Every field set: nothing comes from vLLM's or the model's defaults."""
        from vllm import SamplingParams as VSamplingParams

        greedy = params.temperature == 0
        return VSamplingParams(
            n=params.samples,
            temperature=params.temperature,
            top_p=1.0 if greedy else params.top_p,
            top_k=0 if greedy else params.top_k,
            min_p=0.0,
            repetition_penalty=params.repetition_penalty,
            presence_penalty=0.0,
            frequency_penalty=0.0,
            max_tokens=params.max_new_tokens,
            min_tokens=0,
            seed=seed,
            stop_token_ids=self.stops,
            ignore_eos=False,
            logprobs=None,
            detokenize=False,
        )


def _prepare_embeddings(model: torch.nn.Module) -> None:
    """Re-run the kernel preparation of every embedding and LM head (a no-op off the CPU)."""
    from vllm.model_executor.layers.vocab_parallel_embedding import UnquantizedEmbeddingMethod

    for module in model.modules():
        method = getattr(module, "quant_method", None)
        if isinstance(method, UnquantizedEmbeddingMethod):
            method.process_weights_after_loading(module)


def _cpu_kv_cache(
    model_dir: str | Path,
    placement: Placement,
    settings: VLLMSettings,
    sizes: tuple[int | None, int | None],
    trust_remote_code: bool,
) -> dict[str, Any]:
    """The engine arguments that size a CPU engine's KV cache: `runtime.vllm.cpu_kv_cache_mib`
    when set; else, given (sequences, tokens per sequence), what they need (at most
    max_num_seqs sequences, and at least one max_model_len sequence, which vLLM requires),
    with max_model_len the tokens rounded up to a block unless configured; else
    `kv_budget.UNSIZED_KV_CACHE_MIB`."""
    kwargs: dict[str, Any] = {"block_size": kv_budget.BLOCK_TOKENS}
    sequences, tokens = sizes
    if settings.cpu_kv_cache_mib is not None:
        reserved, how = settings.cpu_kv_cache_mib * kv_budget.MIB, "runtime.vllm.cpu_kv_cache_mib"
    elif sequences is None or tokens is None:
        reserved = kv_budget.UNSIZED_KV_CACHE_MIB * kv_budget.MIB
        how = "the default for an unsized engine"
    else:
        config = AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
        longest = settings.max_model_len or _block_length(tokens, config)
        kwargs["max_model_len"] = longest
        sequences = min(sequences, settings.max_num_seqs)
        reserved = max(
            kv_budget.kv_cache_bytes(config, placement.dtype, sequences, tokens),
            kv_budget.kv_cache_bytes(config, placement.dtype, 1, longest),
        )
        how = f"computed for {sequences} sequences of up to {tokens} tokens"
    log.info("vLLM KV cache: %d MiB reserved (%s)", reserved // kv_budget.MIB, how)
    return kwargs | {"kv_cache_memory_bytes": reserved}


def _block_length(tokens: int, config: Any) -> int:
    """`tokens` rounded up to whole KV blocks, within the model's context when it has one."""
    rounded = kv_budget.blocks(tokens) * kv_budget.BLOCK_TOKENS
    return min(rounded, getattr(config, "max_position_embeddings", None) or rounded)


_MEMORY = re.compile(r"kv cache|cache blocks|out of memory|memory", re.IGNORECASE)


def _memory_advice(placement: Placement, settings: VLLMSettings, kwargs: dict[str, Any]) -> str:
    """The engine could not reserve memory: the keys that size it, and what is free."""
    if placement.device.type == "cuda":
        free, total = torch.cuda.mem_get_info(placement.device)
        return (
            f"the vLLM engine could not fit its weights and KV cache in "
            f"runtime.vllm.gpu_memory_utilization = {settings.gpu_memory_utilization} of the "
            f"GPU ({free / 2**30:.1f} of {total / 2**30:.1f} GiB free): raise it if the GPU is "
            "yours alone, or lower runtime.vllm.max_num_seqs / max_model_len"
        )
    import psutil

    free = psutil.virtual_memory().available / 2**30
    key, mib = "runtime.vllm.cpu_kv_cache_mib", kwargs["kv_cache_memory_bytes"] // kv_budget.MIB
    asked = f"{key} = {mib} MiB" if settings.cpu_kv_cache_mib else f"{mib} MiB ({key} unset)"
    return (
        f"the vLLM engine could not reserve {asked} for its KV cache ({free:.1f} GiB of memory "
        f"free): set {key} lower, or generation.backend: hf"
    )


def _generation_eos(model_dir: str | Path) -> int | list[int] | None:
    """The eos id(s) of the model's generation config (what the HF backend stops on)."""
    try:
        return GenerationConfig.from_pretrained(model_dir).eos_token_id
    except OSError:  # no generation_config.json: HF falls back to the model config's
        return AutoConfig.from_pretrained(model_dir).eos_token_id


@contextmanager
def _torch_state_kept() -> Iterator[None]:
    """Starting a CPU engine in-process seeds torch's global RNG, sets torch to one thread and
    replaces `torch.set_num_threads` by a no-op; a trainer in the same process keeps its own."""
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    set_threads = torch.set_num_threads
    try:
        yield
    finally:
        torch.set_num_threads = set_threads
        torch.set_num_threads(threads)
        torch.set_rng_state(rng)
