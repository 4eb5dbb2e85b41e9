# Helpers for the workflow: config look-ups and input functions (no rules here).
import json

SAFETY_ROLES = ("eval_harmful", "eval_overrefusal")
EVAL_ROLES = (*SAFETY_ROLES, "eval_reasoning")


def as_json(obj):
    """A config value as one JSON argument for the `opsa` command line."""
    return json.dumps(obj, sort_keys=True)


def datasets_with_role(*roles):
    return [name for name, spec in config["datasets"].items() if spec["role"] in roles]


def variants():
    """The base model plus one variant per configured training method."""
    return ["base"]


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


def reference_prefixes_arg():
    reference = config["judge_validation"].get("reference_prefixes")
    return f"--reference-prefixes '{reference}'" if reference else ""


def final_outputs(wildcards):
    return [
        "results/report/summary.md",
        "results/report/summary.csv",
        "results/report/safety_vs_reasoning.png",
        *judge_validation_files(),
    ]
