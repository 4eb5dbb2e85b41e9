"""The pool of candidate privileged contexts, as data: a template grid, a user file, a model.

Every candidate is a `Context` row with its axes (strength, length, framing, specificity, style,
placement). The pool is checked as a whole (not empty, unique ids) and each candidate is
rendered through the model's chat template, so a placement the template cannot express fails
here, naming the candidate, instead of silently scoring a context the model never saw.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from jinja2 import TemplateError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from opsa.contexts import PACKAGE_GRIDS
from opsa.errors import InputError, first_error
from opsa.generation.backend import open_generator
from opsa.generation.engine import Generator, SamplingParams
from opsa.models.load import load_tokenizer
from opsa.prompting.placement import PLACEMENTS, Context, Placement, render_prompt
from opsa.records import read_jsonl, read_yaml, require_columns, write_jsonl

log = logging.getLogger(__name__)

AXES: tuple[str, ...] = ("strength", "length", "framing", "specificity", "style", "placement")
# which prompts a candidate is for: c_h is chosen among the harmful ones, c_b among the benign
# ones (instructions that tell the teacher a request is safe and should be answered fully)
Branch = Literal["harmful", "benign"]
PROBE_PROMPT = "How do I pick a lock?"
META_PROMPT = (
    "Write one short instruction, addressed to an AI assistant, that makes it refuse harmful "
    "or dangerous requests while still answering harmless ones. Reply with the instruction only."
)


class Example(BaseModel):
    """One earlier exchange of a few-shot context."""

    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1)
    assistant: str = Field(min_length=1)


class GridInstruction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    text: str = Field(min_length=1)
    branch: Branch = "harmful"
    axes: dict[str, str] = {}
    placements: list[Placement] | None = None  # None: the grid's placements
    # the demonstrations placement's exchanges (None: the grid's one harmful example, refused);
    # e.g. a refused harmful request and a borderline benign one answered
    examples: list[Example] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _benign_without_demonstrations(self) -> GridInstruction:
        if self.branch == "benign" and "demonstrations" in (self.placements or []):
            raise ValueError("a benign instruction has no demonstration (its example is a refusal)")
        return self


class TemplateGrid(BaseModel):
    """Instruction texts x placements; demonstrations use one harmful example and a refusal."""

    model_config = ConfigDict(extra="forbid")

    instructions: list[GridInstruction]
    placements: list[Placement] = list(PLACEMENTS)
    demonstration_prompt: str = Field(min_length=1)
    demonstration_refusal: str = Field(min_length=1)


class GeneratedCandidates(BaseModel):
    """Candidates written by a model from a meta-prompt (sampled, seeded)."""

    model_config = ConfigDict(extra="forbid")

    model_dir: str
    n: int = Field(4, ge=1)
    seed: int = 0
    temperature: float = Field(0.9, gt=0.0)
    max_new_tokens: int = Field(64, ge=1)
    meta_prompt: str = META_PROMPT
    placements: list[Literal["system", "user_prefix", "user_suffix"]] = ["system", "user_prefix"]


class CandidatesConfig(BaseModel):
    """Where the pool comes from. grid: a package grid ('default', 'paper'), a YAML path, or
    None."""

    model_config = ConfigDict(extra="forbid")

    grid: str | None = "default"
    user_file: str | None = None
    generated: GeneratedCandidates | None = None


def load_grid(source: str | Path = "default") -> TemplateGrid:
    """A grid shipped with the package (by name), or a grid read from a YAML file."""
    if str(source) in PACKAGE_GRIDS:
        file = f"{source}_grid.yaml"
        text = resources.files("opsa.contexts").joinpath(file).read_text(encoding="utf-8")
        grid, name = yaml.safe_load(text), f"opsa/contexts/{file}"
    else:
        if not Path(source).is_file():
            raise InputError(f"{source}: grid file not found")
        grid, name = read_yaml(source), str(source)
    try:
        return TemplateGrid.model_validate(grid)
    except ValidationError as e:
        key, msg = first_error(e)
        raise InputError(f"{name}: bad template grid ({key}: {msg})") from None


def grid_candidates(grid: TemplateGrid) -> list[Context]:
    """One candidate per (instruction, placement); id '<instruction id>@<placement>'. A benign
    instruction without its own placements takes the grid's, less demonstrations."""
    default = ((grid.demonstration_prompt, grid.demonstration_refusal),)
    out = []
    for entry in grid.instructions:
        placements = entry.placements or [
            p for p in grid.placements if entry.branch == "harmful" or p != "demonstrations"
        ]
        axes = entry.axes | {"branch": entry.branch, "source": "grid"}
        demo = tuple((e.user, e.assistant) for e in entry.examples or []) or default
        out += [place_instruction(entry.id, entry.text, p, axes, demo) for p in placements]
    return out


def branch_of(context: Context) -> Branch:
    """The prompts a candidate is for (candidates from a user file or a model without a
    `branch` axis are harmful-prompt contexts)."""
    return "benign" if context.axes.get("branch") == "benign" else "harmful"


def place_instruction(
    stem: str,
    text: str,
    placement: str,
    axes: dict[str, str],
    examples: tuple[tuple[str, str], ...],
) -> Context:
    """An instruction as a context in `placement`, id '<stem>@<placement>'. As demonstrations
    it becomes earlier exchanges, one per example: the instruction and the first example's
    prompt as the first user turn, each example's answer as an assistant turn."""
    turns: tuple[tuple[str, str], ...] = ()
    if placement == "demonstrations":
        (first, answer), *rest = examples
        turns = ((f"{text}\n\n{first}", answer), *rest)
    axes = {**axes, "placement": placement}
    return Context(f"{stem}@{placement}", text, placement, turns, axes)


def user_candidates(path: str | Path) -> list[Context]:
    """Candidates from a JSONL file of `Context.to_row` rows."""
    rows = read_jsonl(path)
    require_columns(rows, ["id", "placement"], path)
    out = []
    for row in rows:
        context = Context.from_row(row)
        if context.axes.get("branch", "harmful") not in get_args(Branch):
            raise InputError(
                f"{path}: candidate '{context.id}': axes.branch must be one of "
                f"{', '.join(get_args(Branch))}, got {context.axes['branch']!r}"
            )
        axes = {**context.axes, "placement": context.placement, "source": "user"}
        out.append(Context(context.id, context.text, context.placement, context.turns, axes))
    return out


def generated_candidates(spec: GeneratedCandidates, generator: Generator) -> list[Context]:
    """`spec.n` instructions sampled from the meta-prompt, spread over `spec.placements`."""
    rendered = render_prompt(generator.tokenizer, spec.meta_prompt)
    params = SamplingParams(
        temperature=spec.temperature,
        max_new_tokens=spec.max_new_tokens,
        samples=spec.n,
        seed=spec.seed,
    )
    texts = [c.text.strip() for c in generator.generate([rendered], params)[0]]
    out = []
    for k, text in enumerate(texts):
        if not text:
            log.warning("generated candidate %d is empty; skipped", k)
            continue
        placement = spec.placements[k % len(spec.placements)]
        axes = {"placement": placement, "source": "generated"}
        out.append(Context(f"generated-{k}@{placement}", text, placement, (), axes))
    return out


def validate_pool(contexts: list[Context], tokenizer: Any) -> None:
    """Non-empty, unique ids, every candidate says something, and every candidate renders
    into the model's chat template."""
    if not contexts:
        raise InputError(
            "candidate pool: no candidates (the grid, user file and generator gave none)"
        )
    seen: set[str] = set()
    for context in contexts:
        if context.id in seen:
            raise InputError(f"candidate pool: duplicate candidate id '{context.id}'")
        seen.add(context.id)
        if not all(piece.strip() for piece in context.pieces()):
            raise InputError(
                f"context '{context.id}': empty text (it would leave the teacher's prompt equal "
                "to the student's)"
            )
        try:
            render_prompt(tokenizer, PROBE_PROMPT, context)
        except TemplateError as e:
            raise InputError(
                f"context '{context.id}': the chat template of {tokenizer.name_or_path} cannot "
                f"express placement '{context.placement}' ({e})"
            ) from None


def build_candidates(
    config: CandidatesConfig, model_dir: str | Path, out_path: str | Path
) -> list[Context]:
    """Collect the pool from all configured sources, check it against the chat template of
    the model in `model_dir` (the model whose teacher will use it), write it as JSONL."""
    contexts: list[Context] = []
    if config.grid is not None:
        contexts += grid_candidates(load_grid(config.grid))
    if config.user_file is not None:
        contexts += user_candidates(config.user_file)
    if config.generated is not None:
        generator = open_generator(config.generated.model_dir, "writer", "candidate writer")
        contexts += generated_candidates(config.generated, generator)
    validate_pool(contexts, load_tokenizer(model_dir))
    write_jsonl(out_path, [c.to_row() for c in contexts])
    log.info("%d candidate contexts -> %s", len(contexts), out_path)
    return contexts


def read_candidates(path: str | Path) -> list[Context]:
    """The candidates file written by `build_candidates`."""
    rows = read_jsonl(path)
    require_columns(rows, ["id", "placement"], path)
    return [Context.from_row(row) for row in rows]
