"""SafeSteer's steered teacher, measured and gated like every context's teacher.

The teacher SafeSteer distills toward is the frozen model with `coefficient x direction` added
at the direction's layer. Before any SafeSteer training job, that teacher answers the same
prompts every context's teacher answered in flip-rate scoring (the judged no-context baseline
of the selection split: its harmful sample and its borderline benign prompts), with the same
decoding and the same judge, at every coefficient of `coefficients` and at the coefficient
training uses. Each gets the teacher's point of opsa.teachers (harmful safe, borderline
refusal, discrimination, composite, with intervals on the same bootstrap draws as the base's)
and the gate's verdict against the base model's point.

The gate reads the training coefficient's point. When it fails, the step stops with one line
naming the coefficient, its numbers, the best coefficient measured and the override key
(`training.safesteer.teacher.gate.override`), and writes nothing; with the override it writes
the record with a warning that the report puts on top of `summary.md`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from opsa.contexts.flip_rate import (
    VERDICT_COLUMNS,
    baseline_verdicts,
    diagnose,
    judge_responses,
    read_baseline,
)
from opsa.errors import InputError
from opsa.generation.engine import SamplingParams
from opsa.generation.hf import HFGenerator
from opsa.judges.base import Judge, Verdict
from opsa.models import runtime
from opsa.models.load import load_tokenizer
from opsa.prompting.placement import render_prompt
from opsa.records import write_json
from opsa.steering.direction import RefusalDirection
from opsa.steering.hook import Steering, steered
from opsa.teachers import GateConfig, gate_failures

log = logging.getLogger(__name__)

SETS = ("harmful", "borderline")
OVERRIDE_KEY = "training.safesteer.teacher.gate.override"


class SteeredTeacherCheck(BaseModel):
    """Which coefficients the steered teacher is measured at, and its gate."""

    model_config = ConfigDict(extra="forbid")

    coefficients: list[float] = Field(
        [0.5, 1.0, 2.0, 4.0],
        min_length=1,
        description="coefficients measured besides the one training uses (the report shows all)",
    )
    gate: GateConfig = Field(
        default_factory=GateConfig,
        description="the teacher gate of contexts.selection.gate, for the training coefficient",
    )


def check_steered_teacher(
    model_dir: str | Path,
    direction_path: str | Path,
    baseline_path: str | Path,
    judge: Judge,
    sampling: SamplingParams,
    coefficient: float,
    check: SteeredTeacherCheck,
    out: str | Path,
    n_bootstrap: int = 1000,
    seed: int = 0,
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Measure the steered teacher at every coefficient, gate the training one, write `out`."""
    rows, base_verdicts = teacher_prompts(baseline_path, judge.name, sampling)
    # seed + 2: the draws of every teacher point in flip-rate scoring, so the base's point is
    # the one in teachers.json and every teacher is resampled on the same prompts
    base = diagnose(rows, base_verdicts, n_bootstrap, seed + 2)
    direction = RefusalDirection.load(direction_path)
    model = runtime.current().load_model(model_dir, "teacher", trust_remote_code)
    tokenizer = load_tokenizer(model_dir, trust_remote_code)
    generator = HFGenerator(model, tokenizer)
    texts = [render_prompt(tokenizer, row["prompt"]) for row in rows]
    points = []
    for c in sorted({*check.coefficients, coefficient}):
        generator.desc = f"steered teacher, coefficient {c:g}"
        with steered(model, Steering(direction, c)):
            responses = [out[0].text for out in generator.generate(texts, sampling)]
        verdicts = judge_responses(judge, rows, responses, generator.desc)
        point = diagnose(rows, verdicts, n_bootstrap, seed + 2)
        failures = gate_failures(point, base, check.gate)
        examples = [r for row, r in zip(rows, responses, strict=True) if row["set"] == "harmful"]
        points.append(
            {"coefficient": c, **point, "passes_gate": not failures, "gate_failures": failures}
            | {"examples": [text[:200] for text in examples[:3]]}
        )
        log.info(
            "steered teacher, coefficient %g: harmful safe %.3f, borderline refusal %.3f (%s)",
            c, point["harmful_safe"], point["borderline_refusal"], "; ".join(failures) or "pass",
        )  # fmt: skip
    record = {
        "direction": {"layer": direction.layer, "position": direction.position},
        "coefficient": coefficient,
        "judge": judge.name,
        "base": base,
        "coefficients": points,
        "gate": gate_verdict(points, coefficient, check.gate),
    }
    write_json(out, record)
    return record


def teacher_prompts(
    path: str | Path, judge_name: str, sampling: SamplingParams
) -> tuple[list[dict[str, Any]], list[Verdict]]:
    """The harmful and borderline rows of the judged no-context baseline (read and checked as
    flip-rate scoring reads it), and the base model's verdicts on them."""
    baseline = read_baseline(path, sampling, VERDICT_COLUMNS)
    verdicts = baseline_verdicts(baseline, judge_name, path)
    kept = [k for k, row in enumerate(baseline) if row["set"] in SETS]
    rows = [baseline[k] for k in kept]
    counts = {name: sum(row["set"] == name for row in rows) for name in SETS}
    if not all(counts.values()):
        raise InputError(
            f"{path}: the steered teacher needs harmful and borderline prompts, got {counts} "
            "(contexts.n_borderline and a select_borderline prompt set)"
        )
    return rows, [verdicts[k] for k in kept]


def gate_verdict(
    points: list[dict[str, Any]], coefficient: float, gate: GateConfig
) -> dict[str, Any]:
    """The gate on the training coefficient's point: passes, stops with one line, or (override)
    goes on with a warning."""
    trained = next(p for p in points if p["coefficient"] == coefficient)
    verdict: dict[str, Any] = {"enabled": gate.enabled, "passed": trained["passes_gate"]}
    verdict |= {"overridden": False, "max_borderline_increase": gate.max_borderline_increase}
    if trained["passes_gate"] or not gate.enabled:
        return verdict
    best = max(points, key=lambda p: (p["passes_gate"], p["composite"], -p["coefficient"]))
    what = (
        f"SafeSteer's steered teacher at coefficient {coefficient:g} fails the gate: "
        f"{'; '.join(trained['gate_failures'])} (harmful safe {trained['harmful_safe']:.3f}, "
        f"borderline refusal {trained['borderline_refusal']:.3f}); best measured: coefficient "
        f"{best['coefficient']:g}, harmful safe {best['harmful_safe']:.3f}, borderline refusal "
        f"{best['borderline_refusal']:.3f}, {'passes' if best['passes_gate'] else 'fails too'}"
    )
    if not gate.override:
        raise InputError(f"steered teacher gate: {what}; set {OVERRIDE_KEY}: true to train anyway")
    warning = f"{what}; trained anyway ({OVERRIDE_KEY})"
    log.warning("%s", warning)
    return verdict | {"overridden": True, "warning": warning}
