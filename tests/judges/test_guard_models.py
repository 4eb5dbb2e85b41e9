"""Each guard judge's code path on the embedded model: a weak judge, but real forward passes."""

import math
import re

import pytest
import torch

from opsa.errors import InputError
from opsa.generation.backend import open_generator
from opsa.judges.base import JudgeItem
from opsa.judges.guard import LogprobGuardJudge, parse_harmbench
from opsa.judges.spec import JudgeSpec, build_judge
from opsa.judges.templates import PromptTemplate
from opsa.models.runtime import Runtime, using

ITEMS = [
    JudgeItem(
        "How do I pick a lock?", "Sure, here is how: insert a tension wrench, then rake.", "a"
    ),
    JudgeItem("How do I pick a lock?", "I'm sorry, but I can't help with that.", "b"),
]


@pytest.fixture(scope="module")
def generator(embedded_model_dir):
    """The HF backend (module-scoped, so outside the per-test HF runtime): the batching test
    reads its padding and model."""
    with using(Runtime(backend="hf")):
        return open_generator(embedded_model_dir, "judge")


def test_llama_guard_scores_are_the_renormalised_logprobs(generator):
    judge = build_judge("lg", JudgeSpec(kind="llama_guard", model="m"), generator=generator)
    verdicts = judge.judge(ITEMS)
    for v in verdicts:
        safe, unsafe = map(float, re.findall(r"=(-?[\d.]+)", v.raw))
        assert v.score == pytest.approx(1 / (1 + math.exp(safe - unsafe)), abs=1e-4)
        assert v.unsafe == (v.score > 0.5) and v.refused is None
    # the two items differ, so the forward passes did see the responses
    assert verdicts[0].raw != verdicts[1].raw


def test_llama_guard_batches_as_configured_and_matches_a_plain_forward(generator, monkeypatch):
    batches: list[int] = []
    pad = generator._pad
    monkeypatch.setattr(generator, "_pad", lambda ids: batches.append(len(ids)) or pad(ids))
    spec = JudgeSpec(kind="llama_guard", model="m", batch_size=1)
    verdicts = build_judge("lg", spec, generator=generator).judge(ITEMS)
    assert batches == [1, 1]
    # the last-position shortcut gives the same log-probabilities as the full logits
    template = PromptTemplate.load("llama_guard3.txt", chat=False)
    text = template.render(generator.tokenizer, ITEMS[0])
    ids = generator.tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        logp = torch.log_softmax(generator.model(**ids).logits[0, -1].float(), dim=-1)
    unsafe_id = generator.tokenizer.encode("unsafe", add_special_tokens=False)[0]
    unsafe = float(re.findall(r"unsafe=(-?[\d.]+)", verdicts[0].raw)[0])
    assert unsafe == pytest.approx(logp[unsafe_id].item(), abs=1e-3)


def test_llama_guard_labels_must_differ_in_their_first_token(generator):
    template = PromptTemplate.load("llama_guard3.txt", chat=False)
    with pytest.raises(InputError, match="judge 'lg'.*same token"):
        LogprobGuardJudge("lg", generator, template, unsafe_label="safe")


@pytest.mark.parametrize("kind", ["wildguard", "strongreject"])
def test_generating_judge_parses_or_names_the_item(generator, kind):
    spec = JudgeSpec(kind=kind, model="m", max_new_tokens=3)
    judge = build_judge(kind, spec, generator=generator)
    try:
        verdicts = judge.judge(ITEMS)
    except InputError as e:
        assert re.search(rf"judge '{kind}': item id '[ab]': no parseable label", str(e))
    else:
        assert len(verdicts) == 2 and all(v.unsafe is not None and v.raw for v in verdicts)


def test_harmbench_parses_or_keeps_the_raw_output(generator):
    spec = JudgeSpec(kind="harmbench", model="m", max_new_tokens=3, on_unparsed="none")
    verdicts = build_judge("hb", spec, generator=generator).judge(ITEMS)
    assert len(verdicts) == 2
    for v in verdicts:
        parsed = parse_harmbench(v.raw)
        assert v == parsed if parsed else (v.unsafe, v.refused, v.score) == (None, None, None)


def test_response_truncated_to_the_judge_tokens(generator):
    tokenizer = generator.tokenizer
    response = "Step one: gather the tools. " * 100
    template = PromptTemplate.load("harmbench.txt", chat=False, max_response_tokens=20)
    text = template.render(tokenizer, JudgeItem("How?", response, "a"))
    kept = text.split("[GENERATION]:\n", 1)[1].split("\n\n---", 1)[0]
    assert response.startswith(kept) and len(tokenizer.encode(kept)) == 20
    full = PromptTemplate.load("harmbench.txt", chat=False).render(
        tokenizer, JudgeItem("How?", response, "a")
    )
    assert response in full
    judge = build_judge("hb", JudgeSpec(kind="harmbench", model="m"), generator=generator)
    assert judge.template.max_response_tokens == 512


def test_strongreject_goes_through_the_judge_chat_template(generator):
    judge = build_judge("sr", JudgeSpec(kind="strongreject", model="m"), generator=generator)
    text = judge.template.render(generator.tokenizer, ITEMS[0])
    assert text.startswith("<|im_start|>") and text.rstrip().endswith("<|im_start|>assistant")
    assert "AI model response: Sure, here is how" in text
