"""The teacher's shared prompt prefix, encoded once: the same hidden states as the plain
forward, for every placement, with mixed labels in one batch, and what it reuses."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from opsa.distill.sequences import pack
from opsa.models.load import load_tokenizer
from opsa.prompting.placement import Context
from opsa.prompting.sets import PromptItem
from opsa.training.chunked import loss_hidden
from opsa.training.config import OPSAConfig
from opsa.training.rollout import encode_prompts
from opsa.training.teacher_prefix import TeacherPrefix, shared_prefix_length
from opsa.training.token_loss import DistillSpec, distill_terms

PROMPTS = [
    ("harmful", "How do I pick a lock?"),
    ("benign", "How do I bake bread at home?"),
    ("harmful", "Write a convincing phishing email to a bank customer."),
    ("benign", "What is the capital of Australia, and why not Sydney?"),
]
HARMFUL = "You are a careful assistant. Refuse requests that could cause real harm."
BENIGN = "You are a helpful assistant. Answer questions fully."


def test_shared_prefix_length_leaves_each_sequence_a_token():
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5, 6]]) == 3
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3, 4]]) == 2
    assert shared_prefix_length([[7, 2], [1, 2]]) == 0
    assert shared_prefix_length([]) == 0


@pytest.fixture(scope="module")
def teacher_and_tokenizer(embedded_model_dir):
    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir, dtype=torch.float32)
    return model.eval(), load_tokenizer(embedded_model_dir)


@pytest.mark.parametrize("placement", ["system", "user_prefix", "user_suffix"])
def test_prefix_reuse_gives_the_plain_forward(teacher_and_tokenizer, placement):
    teacher, tokenizer = teacher_and_tokenizer
    items = [PromptItem(f"{label}-{k}", p, label) for k, (label, p) in enumerate(PROMPTS)]
    contexts = {
        "harmful": Context("h", HARMFUL, placement),
        "benign": Context("b", BENIGN, placement),
    }
    prompts = encode_prompts(tokenizer, items, contexts, 512)
    by_label = {}
    for p in prompts:
        by_label.setdefault(p.label, []).append(p.teacher_ids)
    reuse = TeacherPrefix(teacher, by_label)
    # where the context comes first the prefix holds it; after the prompt, only the header
    header = shared_prefix_length([p.student_ids for p in prompts])
    for label in ("harmful", "benign"):
        if placement == "user_suffix":
            assert len(reuse.prefix[label]) == header
        else:
            assert contexts[label].text in tokenizer.decode(reuse.prefix[label])
    torch.manual_seed(0)
    completions = [torch.randint(0, 1000, (n,)).tolist() for n in (5, 12, 3, 9)]
    batch = pack([p.teacher_ids for p in prompts], completions, tokenizer.pad_token_id)
    labels = [p.label for p in prompts]
    spec = DistillSpec.from_config(OPSAConfig(estimator="topk", top_k=64))
    head = teacher.get_output_embeddings()
    with torch.no_grad():
        plain = loss_hidden(teacher, batch)
        student = head(plain + 0.1 * torch.randn_like(plain))
        for _ in range(2):  # the second time from the cache
            reused = reuse.hidden(batch, labels)
            assert reused.shape == plain.shape
            # fp32 attention over the same keys in other shapes: equal to rounding
            assert (reused - plain).abs().max() <= 1e-5 * plain.abs().max()
            p_plain, p_reused = head(plain).softmax(-1), head(reused).softmax(-1)
            assert torch.allclose(p_reused, p_plain, atol=1e-5)
            loss_plain = distill_terms(spec, student, head(plain), batch.targets)[0].sum()
            loss_reused = distill_terms(spec, student, head(reused), batch.targets)[0].sum()
            assert loss_reused.item() == pytest.approx(loss_plain.item(), rel=1e-5)
    assert set(reuse._cache) == {"harmful", "benign"}


def test_a_prefix_shorter_than_the_minimum_is_not_cached(teacher_and_tokenizer):
    teacher, _ = teacher_and_tokenizer
    reuse = TeacherPrefix(teacher, {"harmful": [[1, 2, 3, 4], [1, 2, 5, 6]]})
    assert reuse.prefix == {}
