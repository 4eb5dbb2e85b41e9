rule evaluate:
    input:
        unpack(evaluate_inputs),
        code=package_code("evaluate"),
    output:
        metric=P.evaluation,
        per_item=P.evaluation_items,
    log:
        "logs/evaluate/{model}/{variant}/{dataset}.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        role=lambda wc: config["datasets"][wc.dataset]["role"],
        answer_type=lambda wc: config["datasets"][wc.dataset].get("answer_type", "number"),
        judgments=lambda wc, input: input.get("judgments", "none"),
        bootstrap=config["evaluation"]["bootstrap"],
        code_limits=as_json(config["evaluation"]["code_execution"]),
        seed=config["seed"],
        training_seed=lambda wc: optional_arg("--training-seed", training_seed_of(wc.variant)),
    shell:
        "python -m opsa --threads {threads} evaluate --role {params.role:q} --prompts {input.prompts} "
        "--generations {input.generations} --judgments {params.judgments:q} "
        "--answer-type {params.answer_type:q} --model {wildcards.model} "
        "--variant {wildcards.variant} --dataset {wildcards.dataset} "
        "--bootstrap {params.bootstrap:q} --seed {params.seed:q} --code-limits {params.code_limits:q} {params.training_seed} "
        "--out {output.metric} --items {output.per_item} > {log} 2>&1"
