# Input functions and resources of the rules (no rules here). Paths come from opsa.layout,
# target lists from opsa.plan, config questions from opsa.config: this file only wires them.
import json
import shlex
from pathlib import Path

from opsa.config import PipelineConfig, exit_with_one_line
from opsa.errors import InputError
from opsa.layout import BASE, Paths as P, Variant, fill, variant_pattern
from opsa.plan import TRAIN_ROLES, Plan
from opsa.step_code import step_code
from opsa.training.methods import METHODS

try:  # the one validation: every problem ends the run here with one line
    cfg = PipelineConfig.from_config(config)
except InputError as e:
    exit_with_one_line(e)
plan = Plan(cfg, config)
TRAINED = "|".join(f"({variant_pattern(m)})" for m in METHODS)  # any trained variant's name


def as_json(obj):
    """A config value as one JSON argument for the `opsa` command line."""
    return json.dumps(obj, sort_keys=True)


def package_code(step):
    """The package files `python -m opsa <step>` runs (opsa.step_code)."""
    return [str(path) for path in step_code(step)]


def runtime_args():
    """How every model of a step runs (`runtime:`, `generation.backend`)."""
    runtime = as_json(config.get("runtime", {}))
    return (
        f"--runtime {shlex.quote(runtime)} --backend {config['generation'].get('backend', 'auto')}"
    )


def base_model(wc):
    return fill(P.model, model=wc.model, variant=BASE)


def model_dir(model, variant=BASE):
    return fill(P.model, model=model, variant=variant)


def training_set(role):
    """The one prepared set of a training role (asked only by rules that train)."""
    names = cfg.datasets_with_role(role)
    if len(names) != 1:
        raise ValueError(f"config: datasets needs exactly one set with role {role} (has {names})")
    return fill(P.data, dataset=names[0])


def training_sets(wc):
    return {role.removeprefix("train_"): training_set(role) for role in TRAIN_ROLES}


def judge_inputs(judge):
    """Input function: a judge's prepared model (guard judges) and the files it reads."""
    dirs = plan.judge_models(judge)
    return lambda wc: {
        "judge_files": plan.judge_files(judge),
        **({"judge_model": dirs[0]} if dirs else {}),
    }


def judge_params(judge):
    """The command-line arguments naming a judge, its spec and its model."""
    return f"--judge {judge} --spec {shlex.quote(as_json(config['judges'][judge]))}"


def evaluate_inputs(wc):
    names = {"model": wc.model, "variant": wc.variant, "dataset": wc.dataset}
    inputs = {"prompts": fill(P.data, **names), "generations": fill(P.generations, **names)}
    judge = cfg.judge_for(wc.dataset)
    if judge:
        inputs["judgments"] = fill(P.judgments, **names, judge=judge)
    return inputs


def flip_rate_shards(wc):
    return [
        fill(P.flip_shard, model=wc.model, shard=k) for k in range(config["contexts"]["shards"])
    ]


def selection_inputs(wc):
    """The pool and flip-rate table the selection reads (the pool only, when pinned)."""
    searched = config["contexts"]["search"]["rounds"] > 0
    pool = P.searched_candidates if searched else P.candidates
    inputs = {"candidates": fill(pool, model=wc.model)}
    if not cfg.context_pinned():
        table = P.searched_flip_rates if searched else P.flip_rates
        inputs["scores"] = fill(table, model=wc.model)
    return inputs


def chosen_contexts(wc):
    """The selected contexts, under a name that carries their ids (known once the
    select_context checkpoint ran, so training re-plans on the choice); a variant of flip
    rate against outcome trains with its ranked context instead."""
    tfr = Variant.parse(wc.variant).tfr if hasattr(wc, "variant") else None
    if tfr:
        return fill(P.ranked_context, model=wc.model, position=tfr)
    selected = checkpoints.select_context.get(model=wc.model).output.selected
    try:
        return plan.chosen(wc.model, selected)
    except InputError as e:
        exit_with_one_line(e, "workflow")


TRAINING_INPUTS = {  # a training method's named inputs (opsa.training.methods) -> their files
    "harmful": lambda wc: training_set("train_harmful"),
    "benign": lambda wc: training_set("train_benign"),
    "contexts": chosen_contexts,
    "direction": lambda wc: fill(P.direction, model=wc.model),
    "safety_tokens": lambda wc: fill(P.safety_tokens, model=wc.model),
    "offpolicy_pairs": lambda wc: fill(P.offpolicy_pairs, model=wc.model),
    "external_pairs": lambda wc: P.external_pairs,
}


def training_inputs(wc):
    method = METHODS[Variant.parse(wc.variant).method]
    return {name: TRAINING_INPUTS[name](wc) for name in method.inputs}


def training_input_args(wc, input):
    """`--input NAME=PATH` for each named input (empty while a checkpoint is pending)."""
    names = METHODS[Variant.parse(wc.variant).method].inputs
    paths = {name: input.get(name) for name in names}
    return " ".join(f"--input {n}={shlex.quote(str(p))}" for n, p in paths.items() if p)


def optional_arg(flag, value):
    """`--flag 'value'`, or nothing when the value is unset (None or empty; 0 is a value)."""
    return "" if value is None or value == "" else f"{flag} {shlex.quote(str(value))}"


def analysis(name):
    return config["analysis"][name]


def analysis_settings(name):
    """An analysis block as the step reads it (the workflow's own keys left out)."""
    own = ("enabled", "dataset", "judge", "attacker")
    return as_json({k: v for k, v in analysis(name).items() if k not in own})


def analysis_set(name):
    """The harmful set an analysis reads: its `dataset`, else the first harmful set."""
    return analysis(name).get("dataset") or plan.harmful_sets()[0]


def jailbreak_judge():
    return plan.jailbreak_judge()


def jailbreak_attacker():
    """The model that writes PAP paraphrases and PAIR's attacks: `attacker:`, else the first
    policy."""
    return analysis("jailbreak").get("attacker") or config["policies"][0]


def jailbreak_template_files(wc):
    """A templates file of the user's (a package's own file is covered by the code input)."""
    location = analysis("jailbreak")["templates"]
    return [location] if wc.attack == "templates" and not location.startswith("package:") else []


# Resources by model scale (`models.<name>.size`): the rules' defaults; a profile's
# set-resources replaces any of them (profiles/).
def mem_mb_by_scale(base, per_billion):
    return lambda wc: int(base + per_billion * cfg.billions(wc.model))


def runtime_by_scale(small, large):
    """Minutes for a job on `{model}`: `small` up to 2B parameters, `large` above."""
    return lambda wc: small if cfg.billions(wc.model) <= 2.0 else large


def train_gpus(wc):
    return cfg.train_processes(wc.model)


def judge_gpus(wc):
    return 1 if config["judges"][wc.judge].get("model") else 0


def judge_mem_mb(wc):
    model = config["judges"][wc.judge].get("model")
    return int(4000 + 4000 * (cfg.billions(model) if model else 0.0))


def training_seed_of(name):
    """A trained variant's training seed (its own, else the first configured); none for base."""
    variant = Variant.parse(name)
    return None if variant.is_base else variant.seed_or(cfg.training_seeds()[0])
