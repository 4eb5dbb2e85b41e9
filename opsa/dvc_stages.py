"""`dvc.yaml`, generated: the `dvc repro` stages over the Snakemake workflow.

DVC decides which stage changed (code, config keys, upstream outputs); each stage then calls
Snakemake, which reruns exactly the jobs whose inputs, parameters or code changed. A stage's
code dependencies are the package files its steps run (opsa.step_code, the table the rules'
code inputs come from), its outputs the layout's folders. Outputs persist: DVC never deletes
them before a stage runs. Regenerate with `python -m opsa.dvc_stages > dvc.yaml`; a test
checks the committed file is current.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from opsa.layout import Paths as P
from opsa.layout import folder
from opsa.step_code import folded, step_code

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "config/config.yaml"
WORKFLOW = [  # what the workflow reads when it plans
    "workflow", "opsa/config.py", "opsa/config_blocks.py", "opsa/layout.py", "opsa/plan.py",
    "opsa/step_code.py", "opsa/training/methods.py",
]  # fmt: skip


@dataclass(frozen=True)
class Stage:
    """One `dvc repro` stage: the Snakemake target it builds and what it depends on."""

    name: str
    target: str  # a rule of workflow/Snakefile ("" is the default target, `all`)
    steps: tuple[str, ...]  # the opsa steps its jobs run
    reads: tuple[str, ...]  # layout templates of the upstream outputs it reads
    params: tuple[str, ...]  # config keys
    outs: tuple[str, ...]  # layout templates of what it writes
    metrics: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()
    extra_deps: tuple[str, ...] = field(default=())


STAGES = (
    Stage(
        "prepare_data", "stage_prepare_data", ("prepare-data",), (), ("seed", "datasets"),
        (P.data,),
    ),
    Stage(
        "train", "stage_train",
        (
            "prepare-model", "context-candidates", "flip-baseline", "flip-judge-baseline",
            "flip-score", "flip-merge", "context-search", "select-context", "ranked-context",
            "offpolicy-pairs", "external-pairs", "steering-direction", "steered-teacher",
            "safety-tokens", "train",
        ),
        (P.data,),
        ("seed", "models", "policies", "datasets", "judges", "contexts", "training", "analysis"),
        (P.model, P.selected, P.offpolicy_pairs, P.direction),
    ),
    Stage(
        "generate", "stage_generate", ("generate",), (P.data, P.model),
        ("models", "policies", "datasets", "generation", "training"), (P.generations,),
    ),
    Stage(
        "judge", "stage_judge", ("judge",), (P.generations, P.model),
        ("judges", "evaluation.safety_judge", "evaluation.overrefusal_judge"), (P.judgments,),
    ),
    Stage(
        "evaluate", "stage_evaluate", ("evaluate",), (P.data, P.generations, P.judgments),
        ("seed", "datasets", "evaluation"), (P.evaluation,),
    ),
    Stage(
        "report", "",
        (
            "report", "training-curves", "size-sweep", "grid-report", "flip-plot", "teacher-plot",
            "token-divergence", "flip-rate-outcome", "jailbreak-attacks", "jailbreak-paraphrase",
            "jailbreak-generate", "jailbreak-pair", "jailbreak-score", "validate-judge",
        ),
        (P.data, P.evaluation, P.selected, P.direction, P.model, P.generations),
        ("seed", "analysis", "judges", "evaluation.safety_judge", "evaluation.bootstrap"),
        (
            P.jailbreak, P.jailbreak_responses, P.summary_csv, P.summary_md, P.paired_csv,
            P.grid_csv, P.grid_md,
        ),
        metrics=(P.summary_json,),
        plots=(
            P.safety_vs_reasoning, P.flip_rate_plot, P.teacher_plot, P.token_divergence_plot,
            P.jailbreak_plot,
            P.training_curves_plot, P.size_sweep_plot, P.flip_rate_outcome_plot,
        ),
    ),
)  # fmt: skip


def _where(template: str) -> str:
    """A fixed file as itself, a templated one as the folder of all its files."""
    return template if "{" not in template else folder(template)


def _persisted(templates: tuple[str, ...]) -> list[dict]:
    return [{path: {"persist": True}} for path in dict.fromkeys(map(_where, templates))]


def stage_entry(stage: Stage, root: Path = ROOT) -> dict:
    code = sorted({f for step in stage.steps for f in step_code(step)})
    folders = [_where(t) for t in (*stage.outs, *stage.plots) if "{" in t]
    made = " ".join(dict.fromkeys(folders))
    command = f"snakemake --cores all {stage.target}".rstrip()
    entry: dict = {
        "cmd": f"mkdir -p {made} && {command}" if made else command,
        "deps": [*WORKFLOW, *folded(code, root), *dict.fromkeys(map(_where, stage.reads))],
        "params": [{CONFIG: list(stage.params)}],
        "outs": _persisted(stage.outs),
    }
    if stage.metrics:
        entry["metrics"] = _persisted(stage.metrics)
    if stage.plots:
        entry["plots"] = _persisted(stage.plots)
    return entry


def dvc_yaml(root: Path = ROOT) -> str:
    header = "\n".join(f"# {line}".rstrip() for line in (__doc__ or "").strip().splitlines())
    stages = {stage.name: stage_entry(stage, root) for stage in STAGES}
    body = yaml.safe_dump({"stages": stages}, sort_keys=False, width=100)
    return f"{header}\n{body}"


if __name__ == "__main__":
    sys.stdout.write(dvc_yaml())
