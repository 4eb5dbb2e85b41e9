# Helpers for the workflow: config look-ups and input functions (no rules here).
import json
import shlex

SAFETY_ROLES = ("eval_harmful", "eval_overrefusal")
EVAL_ROLES = (*SAFETY_ROLES, "eval_reasoning")


def as_json(obj):
    """A config value as one JSON argument for the `opsa` command line."""
    return json.dumps(obj, sort_keys=True)


def datasets_with_role(*roles):
    return [name for name, spec in config["datasets"].items() if spec["role"] in roles]


def variants():
    """The base model plus one variant per configured training method."""
    return ["base", *config["training"]["methods"]]


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
    role = config["datasets"][dataset]["role"]
    key = "reasoning" if role == "eval_reasoning" else "safety"
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
        variant=variants(),
        dataset=datasets_with_role(*EVAL_ROLES),
    )


def judge_validation_files():
    if not config["judge_validation"]["files"]:
        return []
    return expand(
        "results/judge_validation/{judge}.json",
        judge=config["judge_validation"]["judges"],
    )


def flip_rate_plots():
    return [] if context_pinned() else config["policies"]


def reference_prefixes_arg():
    reference = config["judge_validation"].get("reference_prefixes")
    return f"--reference-prefixes {shlex.quote(reference)}" if reference else ""


def training_set(role):
    """The one prompt set with a training role (train_harmful or train_benign)."""
    names = datasets_with_role(role)
    if len(names) != 1:
        raise ValueError(
            f"config: datasets needs exactly one set with role {role} (has {names})"
        )
    return f"results/data/{names[0]}.jsonl"


def judge_model_input(judge):
    dirs = judge_model_dirs(judge)
    return {"judge_model": dirs[0]} if dirs else {}


def flip_rate_inputs(wildcards):
    return judge_model_input(config["contexts"]["judge"])


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
    select_context checkpoint has run, so training re-plans on the choice."""
    selected = checkpoints.select_context.get(model=wildcards.model).output.selected
    with open(selected) as f:
        choice = json.load(f)
    benign = (choice["benign"] or {}).get("id", "none")
    return f"results/contexts/{wildcards.model}/chosen/{choice['harmful']['id']}--{benign}.json"


def offpolicy_judge_input(wildcards):
    return judge_model_input(config["training"]["offpolicy"]["judge"])


def sft_pairs(wildcards):
    if wildcards.method == "offpolicy_sd":
        return f"results/training_data/{wildcards.model}/offpolicy.jsonl"
    return "results/training_data/external.jsonl"


def external_n_argument():
    n = config["training"]["external"].get("n")
    return f"--n {n}" if n else ""


def training_settings(method):
    """The settings of one method: the shared ones, then the method's own."""
    training = config["training"]
    own = training["opsa"] if method == "opsa" else training["sft"]
    return {**training["common"], **own}


def train_processes(wildcards):
    """Data-parallel training processes for one model: `models.<name>.train_processes`, else
    `training.num_processes` (over 1: `accelerate launch`, DeepSpeed on GPUs, gloo on CPUs)."""
    model = config["models"][wildcards.model]
    return model.get("train_processes", config["training"].get("num_processes", 1))


def final_outputs(wildcards):
    return [
        *expand("results/report/flip_rates_{model}.png", model=flip_rate_plots()),
        "results/report/summary.md",
        "results/report/summary.csv",
        "results/report/safety_vs_reasoning.png",
        *judge_validation_files(),
    ]
