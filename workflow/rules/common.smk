# Helpers for the workflow: config look-ups and input functions (no rules here).
import ast
import json
import re
import shlex
from pathlib import Path

from opsa.contexts import PACKAGE_GRIDS

SAFETY_ROLES = ("eval_harmful", "eval_overrefusal")
EVAL_ROLES = (*SAFETY_ROLES, "eval_reasoning")
TRAIN_ROLES = ("train_harmful", "train_benign")
CONTEXT_METHODS = ("opsa", "offpolicy_sd")  # the methods that train with selected contexts
PACKAGE = Path(workflow.basedir) / "opsa"  # the package the rules run, with its data files


def as_json(obj):
    """A config value as one JSON argument for the `opsa` command line."""
    return json.dumps(obj, sort_keys=True)


def datasets_with_role(*roles):
    return [name for name, spec in config["datasets"].items() if spec["role"] in roles]


def training_seeds():
    """The training seeds: `training.seeds`, else the one seed of `training.common`."""
    training = config["training"]
    if "seeds" not in training:
        return [training["common"].get("seed", 0)]
    if "seed" in training["common"]:
        raise ValueError("config: training.common.seed: give the seeds in training.seeds only")
    return training["seeds"]


def variant_name(method, seed):
    """A trained variant's name: the first seed keeps the method's name ("opsa"), so adding
    seeds later retrains nothing; every further seed s is "<method>-seed<s>"."""
    return method if seed == training_seeds()[0] else f"{method}-seed{seed}"


TFR_POSITIONS = ("middle", "last")


def method_of(variant):
    """"opsa", "opsa-seed1", "opsa-frac25" -> "opsa" (method names hold no hyphen)."""
    return variant.split("-")[0]


def seed_of(variant):
    found = re.search(r"-seed(\d+)", variant)
    return int(found[1]) if found else training_seeds()[0]


def fraction_of(variant):
    """The share of the training items a variant trains on: "-frac25" is 0.25, else all."""
    found = re.search(r"-frac(\d+)", variant)
    return int(found[1]) / 100 if found else 1.0


def variants():
    """The base model plus one variant per configured training method and seed."""
    trained = [
        variant_name(method, seed)
        for method in config["training"]["methods"]
        for seed in training_seeds()
    ]
    return ["base", *trained]


def size_sweep():
    return config["analysis"]["size_sweep"]


def sweep_variants():
    """The training-set-size sweep's variants, at the first seed: "<method>-frac<percent>"."""
    if not size_sweep()["enabled"]:
        return []
    return [
        f"{method}-frac{round(100 * fraction)}"
        for method in size_sweep()["methods"]
        for fraction in size_sweep()["fractions"]
    ]


def tfr_variants():
    """Flip rate against outcome: OPSA trained with the middle and the last eligible context."""
    enabled = config["analysis"]["flip_rate_outcome"]["enabled"]
    return [f"opsa-tfr{position}" for position in TFR_POSITIONS] if enabled else []


def evaluated_variants():
    """Every variant evaluated: the base model, each method and seed, the analyses' own."""
    return [*variants(), *sweep_variants(), *tfr_variants()]


def model_dir(model, variant="base"):
    return f"results/models/{model}/{variant}"


def judge_of(dataset):
    """The judge name that labels a safety set, or None for reasoning sets."""
    role = config["datasets"][dataset]["role"]
    if role == "eval_harmful":
        return config["evaluation"]["safety_judge"]
    if role == "eval_overrefusal":
        return config["evaluation"]["overrefusal_judge"]
    return None


def judge_model_dirs(judge):
    """The prepared checkpoint a guard-model judge runs on (none for pattern judges)."""
    model = config["judges"][judge].get("model")
    return [model_dir(model)] if model else []


def runtime_args():
    """How every model of a step runs (`runtime:`, `generation.backend`): global opsa options."""
    runtime = as_json(config.get("runtime", {}))
    backend = config["generation"].get("backend", "auto")
    return f"--runtime {shlex.quote(runtime)} --backend {backend}"


def sampling_for(dataset):
    """A set's decoding: `generation.code` for code sets (answer_type humaneval or mbpp),
    `generation.reasoning` for the other reasoning sets, `generation.safety` otherwise."""
    spec = config["datasets"][dataset]
    if spec.get("answer_type") in ("humaneval", "mbpp"):
        key = "code"
    else:
        key = "reasoning" if spec["role"] == "eval_reasoning" else "safety"
    return as_json(config["generation"][key])


def evaluate_inputs(wildcards):
    inputs = {
        "prompts": f"results/data/{wildcards.dataset}.jsonl",
        "generations": f"results/generations/{wildcards.model}/{wildcards.variant}/"
        f"{wildcards.dataset}.jsonl",
    }
    judge = judge_of(wildcards.dataset)
    if judge:
        inputs["judgments"] = (
            f"results/judgments/{wildcards.model}/{wildcards.variant}/"
            f"{wildcards.dataset}.{judge}.jsonl"
        )
    return inputs


def evaluation_files():
    return expand(
        "results/eval/{model}/{variant}/{dataset}.json",
        model=config["policies"],
        variant=evaluated_variants(),
        dataset=datasets_with_role(*EVAL_ROLES),
    )


def prepared_sets():
    return expand("results/data/{dataset}.jsonl", dataset=list(config["datasets"]))


def judges_in_use():
    judges = {config["evaluation"]["safety_judge"], config["evaluation"]["overrefusal_judge"]}
    if context_search_needed():
        judges.add(config["contexts"]["judge"])
    if "offpolicy_sd" in config["training"]["methods"]:
        judges.add(config["training"]["offpolicy"]["judge"])
    if config["judge_validation"]["files"]:
        judges |= set(config["judge_validation"]["judges"])
    return sorted(judges)


def model_dirs():
    """Every model directory the pipeline makes: the policies' base and trained variants
    and the guard models of the judges in use."""
    dirs = [model_dir(m, v) for m in config["policies"] for v in evaluated_variants()]
    return sorted({*dirs, *(d for j in judges_in_use() for d in judge_model_dirs(j))})


def generation_files():
    return expand(
        "results/generations/{model}/{variant}/{dataset}.jsonl",
        model=config["policies"],
        variant=evaluated_variants(),
        dataset=datasets_with_role(*EVAL_ROLES),
    )


def judgment_files():
    return [
        f"results/judgments/{model}/{variant}/{dataset}.{judge_of(dataset)}.jsonl"
        for model in config["policies"]
        for variant in evaluated_variants()
        for dataset in datasets_with_role(*SAFETY_ROLES)
    ]


def judge_validation_files():
    if not config["judge_validation"]["files"]:
        return []
    return expand(
        "results/judge_validation/{judge}.json",
        judge=config["judge_validation"]["judges"],
    )


def context_search_needed():
    """Only OPSA and the off-policy baseline train with selected contexts."""
    return any(m in CONTEXT_METHODS for m in config["training"]["methods"])


def flip_rate_plots():
    return config["policies"] if context_search_needed() and not context_pinned() else []


def reference_prefixes_arg():
    reference = config["judge_validation"].get("reference_prefixes")
    return f"--reference-prefixes {shlex.quote(reference)}" if reference else ""


def training_set(role):
    """The one prompt set with a training role (train_harmful or train_benign); asked only
    by rules that train, so an evaluation-only config needs no training sets."""
    names = datasets_with_role(role)
    if len(names) != 1:
        raise ValueError(
            f"config: datasets needs exactly one set with role {role} (has {names})"
        )
    return f"results/data/{names[0]}.jsonl"


def harmful_training_set(wildcards):
    return training_set("train_harmful")


def benign_training_set(wildcards):
    return training_set("train_benign")


def training_sets(wildcards):
    """Both training sets (the prompts the context search and the trainers read)."""
    return {role.removeprefix("train_"): training_set(role) for role in TRAIN_ROLES}


def package_files(folder, pattern="*"):
    """Data files shipped inside the package (judge phrases and templates, builtin sets)."""
    return sorted(str(path) for path in (PACKAGE / folder).glob(pattern))


def package_code(step):
    """The package's source files that `python -m opsa <step>` runs: the command line, the
    step's handler and every opsa module it imports (lazily or not), so editing the code of
    a step reruns exactly the jobs that run it."""
    cli = PACKAGE / "cli"
    handler = next(
        (module, node)
        for module in sorted(cli.glob("*.py"))
        for node in ast.parse(module.read_text()).body
        if isinstance(node, ast.FunctionDef) and _is_step(node, step)
    )
    files = {PACKAGE / "__main__.py", cli / "__init__.py", handler[0]}
    todo = _opsa_imports(handler[1])
    while todo:
        path = _module_file(todo.pop())
        if path is not None and path not in files:
            files.add(path)
            todo += _opsa_imports(ast.parse(path.read_text()))
    return sorted(str(path) for path in files)


def _is_step(function, step):
    return any(
        isinstance(d, ast.Call) and d.args and getattr(d.args[0], "value", None) == step
        for d in function.decorator_list
    )


def _opsa_imports(tree):
    """Modules named by the opsa imports anywhere in `tree` (`from a import b` gives a and
    a.b: b may be a module)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return [name for name in names if name.split(".")[0] == "opsa"]


def _module_file(name):
    base = PACKAGE.joinpath(*name.split(".")[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def source_files(sources):
    """The files a list of `sources:` reads: local paths and the project's builtin sets
    (hub datasets and files of other installed packages belong to the environment)."""
    files = []
    for source in sources:
        if "path" in source:
            files.append(source["path"])
        elif "builtin" in source:
            files += package_files("data/builtin", f"{source['builtin']}.jsonl")
    return files


def prepare_data_inputs(wildcards):
    """A set's own files; an evaluation set also reads the prepared training sets, whose
    prompts it must not contain (training sets never read evaluation sets, so adding or
    changing an evaluation set retrains nothing)."""
    spec = config["datasets"][wildcards.dataset]
    inputs = {"sources": source_files(spec["sources"])}
    if spec["role"] in EVAL_ROLES:
        inputs["training"] = [
            f"results/data/{name}.jsonl" for name in datasets_with_role(*TRAIN_ROLES)
        ]
    return inputs


def judge_files(judge):
    """The phrase or template files a judge reads: a configured template (a path, else a
    name in the package's templates), or the package's own files for its kind."""
    spec = config["judges"][judge]
    if spec["kind"] == "refusal_pattern":
        return package_files("judges/resources", "*.txt")
    template = spec.get("template")
    if template is None:
        return package_files("judges/templates", "*.txt")
    if Path(template).is_file():
        return [template]
    return [str(PACKAGE / "judges/templates" / template)]


def judge_inputs(judge):
    """A judge's prepared model (guard judges) and the files it reads."""
    inputs = {"judge_files": judge_files(judge)}
    dirs = judge_model_dirs(judge)
    if dirs:
        inputs["judge_model"] = dirs[0]
    return inputs


def flip_rate_inputs(wildcards):
    return judge_inputs(config["contexts"]["judge"])


def context_files(wildcards):
    """The files the candidate pool comes from: the template grid (the package's default or
    yours), a user file of contexts, the model that writes generated candidates."""
    candidates = config["contexts"]["candidates"]
    grid = candidates.get("grid")
    files = [str(PACKAGE / f"contexts/{grid}_grid.yaml")] if grid in PACKAGE_GRIDS else []
    if grid is not None and grid not in PACKAGE_GRIDS:
        files.append(grid)
    if candidates.get("user_file"):
        files.append(candidates["user_file"])
    if candidates.get("generated"):
        files.append(candidates["generated"]["model_dir"])
    return files


def reference_prefix_files(wildcards):
    """The file behind `judge_validation.reference_prefixes` (a phrase file or FILE.json:KEY)."""
    reference = config["judge_validation"].get("reference_prefixes")
    if not reference:
        return []
    path, sep, _ = reference.partition(".json:")
    return [f"{path}.json" if sep else reference]


def external_source_files(wildcards):
    return source_files([config["training"]["external"]["source"]])


def flip_rate_shards(wildcards):
    return expand(
        "results/contexts/{model}/scores/shard{shard}.csv",
        model=wildcards.model,
        shard=range(config["contexts"]["shards"]),
    )


def context_pinned():
    return config["contexts"]["selection"].get("pin_harmful") is not None


def selection_inputs(wildcards):
    """The pool and the flip-rate table the selection reads (the pool only, when pinned)."""
    searched = config["contexts"]["search"]["rounds"] > 0
    folder = f"results/contexts/{wildcards.model}"
    if searched:
        folder = f"{folder}/search"
    inputs = {"candidates": f"{folder}/candidates.jsonl"}
    if not context_pinned():
        inputs["scores"] = f"{folder}/flip_rates.csv"
    return inputs


def chosen_contexts(wildcards):
    """The selected contexts, under a name that carries their ids: known only once the
    select_context checkpoint has run, so training re-plans on the choice. An OPSA variant of
    flip rate against outcome trains with its ranked context instead."""
    position = re.search(r"-tfr(\w+)", getattr(wildcards, "variant", ""))
    if position:
        return f"results/contexts/{wildcards.model}/tfr/{position[1]}.json"
    selected = checkpoints.select_context.get(model=wildcards.model).output.selected
    with open(selected) as f:
        choice = json.load(f)
    benign = (choice["benign"] or {}).get("id", "none")
    return f"results/contexts/{wildcards.model}/chosen/{choice['harmful']['id']}--{benign}.json"


def offpolicy_judge_input(wildcards):
    return judge_inputs(config["training"]["offpolicy"]["judge"])


def sft_pairs(wildcards):
    if method_of(wildcards.variant) == "offpolicy_sd":
        return f"results/training_data/{wildcards.model}/offpolicy.jsonl"
    return "results/training_data/external.jsonl"


def external_n_argument():
    n = config["training"]["external"].get("n")
    return f"--n {n}" if n else ""


def training_settings(method, variant):
    """The settings of one trained variant: the shared ones, the method's own, its seed."""
    training = config["training"]
    own = {"opsa": training["opsa"], "safesteer": safesteer_train_settings()}
    settings = {**training["common"], **own.get(method, training["sft"]), "seed": seed_of(variant)}
    return settings | ({"prompt_fraction": fraction_of(variant)} if "-frac" in variant else {})


def safesteer_train_settings():
    """SafeSteer's own training settings, with the steering coefficient its teacher uses."""
    safesteer = config["training"]["safesteer"]
    return {**safesteer["train"], "steering_coefficient": safesteer["coefficient"]}


# Resources by model scale, from `models.<name>.size` ("135M", "0.6B", "8B"). These are the
# rules' defaults; a profile's set-resources replaces any of them for a rule (profiles/).
SMALL_MODEL_BILLIONS = 2.0


def billions(model):
    """A model's parameter count in billions (0 when its `size` is not given)."""
    size = config["models"][model].get("size")
    if size is None:
        return 0.0
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([MB])", size)
    if not match:
        raise ValueError(f"config: models.{model}.size: '{size}' is not like 135M or 0.6B")
    return float(match[1]) / (1000.0 if match[2] == "M" else 1.0)


def train_processes(model):
    """Training processes (one per GPU): models.<name>.train_processes, else
    training.num_processes."""
    own = config["models"][model].get("train_processes")
    return own or config["training"]["num_processes"]


def train_gpus(wildcards):
    return train_processes(wildcards.model)


def judge_gpus(wildcards):
    """One GPU for a guard-model judge, none for a pattern judge."""
    return 1 if config["judges"][wildcards.judge].get("model") else 0


def mem_mb_by_scale(base, per_billion):
    """Host memory for a job on `{model}`: base + per_billion × the model's billions."""
    return lambda wc: int(base + per_billion * billions(wc.model))


def runtime_by_scale(small, large):
    """Minutes for a job on `{model}`: `small` up to 2B parameters, `large` above."""
    return lambda wc: small if billions(wc.model) <= SMALL_MODEL_BILLIONS else large


def token_analysis():
    return config["analysis"]["token_divergence"]


def token_analysis_set():
    """The harmful set whose base-model responses the token-level analysis reads."""
    return token_analysis().get("dataset") or datasets_with_role("eval_harmful")[0]


def token_divergence_files():
    """One token-level analysis per policy, when a method trains with selected contexts."""
    wanted = token_analysis()["enabled"] and context_search_needed()
    return expand("results/analysis/{model}/token_divergence.json", model=config["policies"]) if wanted else []


def token_settings():
    settings = {k: v for k, v in token_analysis().items() if k not in ("enabled", "dataset")}
    return as_json(settings)


def grid_report_files():
    """The grid report, when both the compared method and its baseline are trained."""
    compared = {config["grid_report"]["method"], config["grid_report"]["baseline"]}
    return ["results/report/grid.md"] if compared <= set(config["training"]["methods"]) else []


def published_source_arg():
    """`--source '...'` for the grid report, or nothing (Snakemake's :q renders "" as nothing)."""
    source = config["grid_report"].get("published_source")
    return f"--source {shlex.quote(source)}" if source else ""


def final_outputs(wildcards):
    return [
        *expand("results/report/flip_rates/{model}.png", model=flip_rate_plots()),
        "results/report/summary.md",
        "results/report/summary.csv",
        "results/report/safety_vs_reasoning.png",
        *grid_report_files(),
        *judge_validation_files(),
    ]


def judge_mem_mb(wildcards):
    model = config["judges"][wildcards.judge].get("model")
    return int(4000 + 4000 * (billions(model) if model else 0.0))


def jailbreak_analysis():
    return config["analysis"]["jailbreak"]


def jailbreak_set():
    """The harmful set whose behaviours the jailbreak attacks are built from."""
    return jailbreak_analysis().get("dataset") or datasets_with_role("eval_harmful")[0]


def jailbreak_judge():
    return jailbreak_analysis().get("judge") or config["evaluation"]["safety_judge"]


def jailbreak_attacker():
    """The model that writes PAP paraphrases: `attacker:`, else the first policy."""
    return jailbreak_analysis().get("attacker") or config["policies"][0]


def jailbreak_settings():
    skip = ("enabled", "dataset", "judge", "attacker")
    return as_json({k: v for k, v in jailbreak_analysis().items() if k not in skip})


def jailbreak_template_files(wildcards):
    """A templates file of the user's (a package's own file is covered by the code input)."""
    location = jailbreak_analysis()["templates"]
    uses = wildcards.attack == "templates" and not location.startswith("package:")
    return [location] if uses else []


def jailbreak_judgments(model):
    """(variant:attack) -> judgments file of `model`'s base and each method's first-seed variant
    (adaptive attacks are the costliest evaluation; further seeds are left out) under every
    attack."""
    attacks = jailbreak_analysis()["attacks"]
    first_seed = ["base", *config["training"]["methods"]]
    return {
        f"{variant}:{attack}": f"results/jailbreak/{model}/{variant}/{attack}.{jailbreak_judge()}.jsonl"
        for variant in first_seed
        for attack in attacks
    }


def jailbreak_files():
    """One jailbreak analysis per policy, when switched on and there is a harmful set."""
    wanted = jailbreak_analysis()["enabled"] and datasets_with_role("eval_harmful")
    return expand("results/analysis/{model}/jailbreak.json", model=config["policies"]) if wanted else []


def trained_variants():
    return [v for v in variants() if v != "base"]


def safesteer_token_tables():
    """SafeSteer's direction and token table per policy, when `safesteer` trains."""
    trains = "safesteer" in config["training"]["methods"]
    return expand("results/steering/{model}/safety_tokens.md", model=config["policies"]) if trains else []


def training_curve_files():
    """One training-curve plot per policy, when any method trains."""
    return expand("results/report/training/{model}.png", model=config["policies"]) if trained_variants() else []


def sweep_points():
    """VARIANT=METHOD:SHARE of the size sweep: the base model, each method's full-size variant
    and its variants on shares of the training items."""
    points = ["base=base:0"]
    for method in size_sweep()["methods"]:
        points.append(f"{variant_name(method, training_seeds()[0])}={method}:1")
        points += [f"{method}-frac{round(100 * f)}={method}:{f}" for f in size_sweep()["fractions"]]
    return points


def sweep_evaluations(model):
    variants_here = [point.partition("=")[0] for point in sweep_points()]
    return expand(
        "results/eval/{model}/{variant}/{dataset}.json",
        model=model,
        variant=variants_here,
        dataset=datasets_with_role(*EVAL_ROLES),
    )


def size_sweep_files():
    """One size-sweep analysis per policy, when the sweep is switched on."""
    return expand("results/analysis/{model}/size_sweep.json", model=config["policies"]) if sweep_variants() else []


def tfr_contexts(model):
    """VARIANT=FILE: the contexts each OPSA variant of flip rate against outcome trained with."""
    ranked = {f"opsa-tfr{p}": f"results/contexts/{model}/tfr/{p}.json" for p in TFR_POSITIONS}
    return {variant_name("opsa", training_seeds()[0]): f"results/contexts/{model}/selected.json", **ranked}


def tfr_evaluations(model):
    return expand(
        "results/eval/{model}/{variant}/{dataset}.json",
        model=model,
        variant=["base", *tfr_contexts(model)],
        dataset=datasets_with_role("eval_harmful"),
    )


def flip_rate_outcome_files():
    """One flip-rate-against-outcome analysis per policy, when switched on."""
    return expand("results/analysis/{model}/flip_rate_outcome.json", model=config["policies"]) if tfr_variants() else []
