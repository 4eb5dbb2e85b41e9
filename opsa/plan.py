"""What the pipeline makes for one config: its target files, from the config root's queries
and the layout's templates. The Snakemake workflow asks this module for every list of
targets, so the rules only wire files to steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsa.contexts import PACKAGE_GRIDS
from opsa.errors import InputError
from opsa.judges.spec import MODEL_FREE
from opsa.layout import BASE, TFR_POSITIONS, Paths, Variant, fill
from opsa.records import read_json

PACKAGE = Path(__file__).resolve().parent  # the package the rules run, with its data files

SAFETY_ROLES = ("eval_harmful", "eval_overrefusal")
EVAL_ROLES = (*SAFETY_ROLES, "eval_reasoning")
TRAIN_ROLES = ("train_harmful", "train_benign")


class Plan:
    """Target lists of one validated config (`cfg`: opsa.config.PipelineConfig; `config`: the
    same config as the dict with its defaults filled in)."""

    def __init__(self, cfg: Any, config: dict[str, Any]) -> None:
        self.cfg = cfg
        self.config = config
        self.policies: list[str] = config["policies"]

    def _each(self, template: str, variants: list[Variant], roles: tuple[str, ...]) -> list[str]:
        return [
            fill(template, model=model, variant=v.name, dataset=dataset)
            for model in self.policies
            for v in variants
            for dataset in self.cfg.datasets_with_role(*roles)
        ]

    def prepared_sets(self) -> list[str]:
        return [fill(Paths.data, dataset=name) for name in self.config["datasets"]]

    def generations(self) -> list[str]:
        return self._each(Paths.generations, self.cfg.evaluated_variants(), EVAL_ROLES)

    def evaluations(self) -> list[str]:
        return self._each(Paths.evaluation, self.cfg.evaluated_variants(), EVAL_ROLES)

    def judgments(self) -> list[str]:
        return [
            fill(Paths.judgments, model=m, variant=v.name, dataset=d, judge=self.cfg.judge_for(d))
            for m in self.policies
            for v in self.cfg.evaluated_variants()
            for d in self.cfg.datasets_with_role(*SAFETY_ROLES)
        ]

    def model_dirs(self) -> list[str]:
        """The policies' base and trained variants and the guard models of the judges in use."""
        dirs = {
            fill(Paths.model, model=m, variant=v.name)
            for m in self.policies
            for v in self.cfg.evaluated_variants()
        }
        judge_models = (self.config["judges"][j].get("model") for j in self.cfg.judges_in_use())
        dirs |= {fill(Paths.model, model=m, variant="base") for m in judge_models if m}
        return sorted(dirs)

    def per_policy(self, template: str, wanted: bool) -> list[str]:
        return [fill(template, model=m) for m in self.policies] if wanted else []

    def judge_validations(self) -> list[str]:
        validation = self.config["judge_validation"]
        judges = validation["judges"] if validation["files"] else []
        return [fill(Paths.judge_validation, judge=j) for j in judges]

    def flip_rate_plots(self) -> list[str]:
        wanted = self.cfg.needs_context_search() and not self.cfg.context_pinned()
        return self.per_policy(Paths.flip_rate_plot, wanted)

    def teacher_plots(self) -> list[str]:
        wanted = self.cfg.needs_context_search() and not self.cfg.context_pinned()
        return self.per_policy(Paths.teacher_plot, wanted)

    def teacher_files(self) -> list[str]:
        """Each policy's teachers.json, for the report (none when nothing uses contexts)."""
        return self.per_policy(Paths.teachers, self.cfg.needs_context_search())

    def token_divergences(self) -> list[str]:
        wanted = self.config["analysis"]["token_divergence"]["enabled"]
        return self.per_policy(Paths.token_divergence, wanted and self.cfg.needs_context_search())

    def jailbreaks(self) -> list[str]:
        wanted = self.config["analysis"]["jailbreak"]["enabled"]
        return self.per_policy(Paths.jailbreak, wanted and self.harmful_sets() != [])

    def size_sweeps(self) -> list[str]:
        return self.per_policy(Paths.size_sweep, bool(self.cfg.sweep_variants()))

    def flip_rate_outcomes(self) -> list[str]:
        return self.per_policy(Paths.flip_rate_outcome, bool(self.cfg.tfr_variants()))

    def safety_token_tables(self) -> list[str]:
        wanted = "safesteer" in self.config["training"]["methods"]
        return self.per_policy(Paths.safety_token_table, wanted)

    def direction_scans(self) -> list[str]:
        wanted = "safesteer" in self.config["training"]["methods"]
        search = self.config["training"]["safesteer"]["direction"].get("search") is not None
        return self.per_policy(Paths.direction_scan, wanted and search)

    def steered_teachers(self, model: str | None = None) -> list[str]:
        """SafeSteer's steered-teacher records: every policy's, or `model`'s."""
        if "safesteer" not in self.config["training"]["methods"]:
            return []
        return [fill(Paths.steered_teacher, model=m) for m in ([model] if model else self.policies)]

    def training_curves(self) -> list[str]:
        return self.per_policy(Paths.training_curves_plot, bool(self.cfg.trained_variants()))

    def grid_reports(self) -> list[str]:
        grid = self.config["grid_report"]
        compared = {grid["method"], grid["baseline"]}
        return [Paths.grid_md] if compared <= set(self.config["training"]["methods"]) else []

    def final(self) -> list[str]:
        return [
            *self.flip_rate_plots(),
            *self.teacher_plots(),
            Paths.summary_md,
            Paths.summary_csv,
            Paths.safety_vs_reasoning,
            *self.grid_reports(),
            *self.judge_validations(),
        ]

    def harmful_sets(self) -> list[str]:
        return self.cfg.datasets_with_role("eval_harmful")

    # the inputs of the analyses that compare variants of one policy

    def sweep_points(self) -> list[str]:
        """VARIANT=METHOD:SHARE of the size sweep: the base model, each method's full-size
        variant and its variants on shares of the training items."""
        points = ["base=base:0"]
        sweep = self.config["analysis"]["size_sweep"]
        for method in sweep["methods"]:
            points.append(f"{method}={method}:1")
            points += [
                f"{Variant(method, fraction=f).name}={method}:{f}" for f in sweep["fractions"]
            ]
        return points

    def sweep_evaluations(self, model: str) -> list[str]:
        variants = [Variant.parse(point.partition("=")[0]) for point in self.sweep_points()]
        return [
            fill(Paths.evaluation, model=model, variant=v.name, dataset=d)
            for v in variants
            for d in self.cfg.datasets_with_role(*EVAL_ROLES)
        ]

    def tfr_contexts(self, model: str) -> dict[str, str]:
        """VARIANT=FILE: the contexts each OPSA variant of flip rate against outcome trained
        with."""
        ranked = {
            Variant("opsa", tfr=p).name: fill(Paths.ranked_context, model=model, position=p)
            for p in TFR_POSITIONS
        }
        return {"opsa": fill(Paths.selected, model=model), **ranked}

    def tfr_evaluations(self, model: str) -> list[str]:
        variants = [BASE.name, *self.tfr_contexts(model)]
        return [
            fill(Paths.evaluation, model=model, variant=v, dataset=d)
            for v in variants
            for d in self.harmful_sets()
        ]

    def chosen(self, model: str, selected: str | Path) -> str:
        """The chosen-contexts file named by the ids a select_context output holds, read
        through the checked reader (a hand-edited selection is one line naming it)."""
        choice = read_json(selected)
        try:
            harmful = choice["harmful"]["id"]
            benign = (choice["benign"] or {}).get("id", "none")
        except (KeyError, TypeError, AttributeError):
            raise InputError(f"{selected}: not a context selection (no harmful.id)") from None
        return fill(Paths.chosen, model=model, harmful=harmful, benign=benign)

    def jailbreak_judge(self) -> str:
        """The judge of the jailbreak analysis: its own `judge`, else the safety judge."""
        own = self.config["analysis"]["jailbreak"].get("judge")
        return own or self.config["evaluation"]["safety_judge"]

    def jailbreak_judgments(self, model: str) -> dict[str, str]:
        """(variant:attack) -> judgments of `model`'s base and each method's first-seed variant
        under every attack (further seeds would multiply the costliest evaluation)."""
        jailbreak = self.config["analysis"]["jailbreak"]
        judge = self.jailbreak_judge()
        first_seed = [BASE.name, *self.config["training"]["methods"]]
        return {
            f"{variant}:{attack}": fill(
                Paths.jailbreak_judgments, model=model, variant=variant, attack=attack, judge=judge
            )
            for variant in first_seed
            for attack in jailbreak["attacks"]
        }

    # the files a step reads besides the layout's outputs (so that editing one reruns it)

    def source_files(self, sources: list[dict]) -> list[str]:
        """The local files and builtin sets a list of `sources:` reads (hub sets and other
        packages' files belong to the environment)."""
        files = []
        for source in sources:
            if "path" in source:
                files.append(source["path"])
            elif "builtin" in source:
                files += package_files("data/builtin", f"{source['builtin']}.jsonl")
        return files

    def data_inputs(self, dataset: str) -> dict[str, list[str]]:
        """A set's own files; an evaluation set also reads the training sets and the
        selection split's borderline set, which it must not contain (those never read
        evaluation sets, so adding an evaluation set retrains nothing)."""
        spec = self.config["datasets"][dataset]
        inputs = {"sources": self.source_files(spec["sources"])}
        if spec["role"] in EVAL_ROLES:
            names = self.cfg.datasets_with_role(*TRAIN_ROLES, "select_borderline")
            inputs["training"] = [fill(Paths.data, dataset=name) for name in names]
        return inputs

    def borderline_sets(self) -> list[str]:
        """The selection split's borderline prompts the teachers are measured on (none when
        the config has no set of role select_borderline)."""
        names = self.cfg.datasets_with_role("select_borderline")
        return [fill(Paths.data, dataset=name) for name in names]

    def judge_models(self, judge: str) -> list[str]:
        """The prepared checkpoint a guard-model judge runs on (none for pattern judges)."""
        model = self.config["judges"][judge].get("model")
        return [fill(Paths.model, model=model, variant=BASE)] if model else []

    def judge_files(self, judge: str) -> list[str]:
        """The phrase or template files a judge reads."""
        spec = self.config["judges"][judge]
        if spec["kind"] in MODEL_FREE:
            return package_files("judges/resources", "*.txt")
        template = spec.get("template")
        if template is None:
            return package_files("judges/templates", "*.txt")
        own = Path(template).is_file()
        return [template if own else str(PACKAGE / "judges/templates" / template)]

    def context_files(self) -> list[str]:
        """The candidate pool's sources: the template grid (the package's or yours), a user
        file of contexts, the model that writes generated candidates."""
        candidates = self.config["contexts"]["candidates"]
        grid = candidates.get("grid")
        files = [str(PACKAGE / f"contexts/{grid}_grid.yaml")] if grid in PACKAGE_GRIDS else []
        files += [grid] if grid is not None and grid not in PACKAGE_GRIDS else []
        files += [candidates["user_file"]] if candidates.get("user_file") else []
        generated = candidates.get("generated")
        return files + ([generated["model_dir"]] if generated else [])

    def reference_files(self) -> list[str]:
        """The file behind `judge_validation.reference_prefixes` (phrases, or FILE.json:KEY)."""
        reference = self.config["judge_validation"].get("reference_prefixes")
        if not reference:
            return []
        path, sep, _ = reference.partition(".json:")
        return [f"{path}.json" if sep else reference]


def package_files(folder: str, pattern: str = "*") -> list[str]:
    """Data files shipped inside the package (judge phrases and templates, builtin sets)."""
    return sorted(str(path) for path in (PACKAGE / folder).glob(pattern))
