rule judge:
    input:
        generations=P.generations,
        judge_model=lambda wc: plan.judge_models(wc.judge),
        judge_files=lambda wc: plan.judge_files(wc.judge),
        code=package_code("judge"),
    output:
        P.judgments,
    log:
        "logs/judge/{model}/{variant}/{dataset}.{judge}.log",
    benchmark:
        "benchmarks/judge/{model}/{variant}/{dataset}.{judge}.tsv"
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=judge_mem_mb,
        runtime=120,
        gpu=judge_gpus,
    params:
        run_on=runtime_args(),
        spec=lambda wc: as_json(config["judges"][wc.judge]),
        judge_model=lambda wc, input: input.judge_model or "none",
    shell:
        "python -m opsa --threads {threads} {params.run_on} judge --generations {input.generations} --judge {wildcards.judge} "
        "--spec {params.spec:q} --judge-model {params.judge_model:q} --out {output} > {log} 2>&1"


rule validate_judge:
    input:
        labelled=config["judge_validation"]["files"],
        judge_model=lambda wc: plan.judge_models(wc.judge),
        judge_files=lambda wc: plan.judge_files(wc.judge),
        reference=lambda wc: plan.reference_files(),
        code=package_code("validate-judge"),
    output:
        report(
            P.judge_validation,
            caption="../report/judge_validation.rst",
            category="Judges",
        ),
    log:
        "logs/validate_judge/{judge}.log",
    benchmark:
        "benchmarks/validate_judge/{judge}.tsv"
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=judge_mem_mb,
        runtime=120,
        gpu=judge_gpus,
    params:
        run_on=runtime_args(),
        spec=lambda wc: as_json(config["judges"][wc.judge]),
        judge_model=lambda wc, input: input.judge_model or "none",
        reference=optional_arg(
            "--reference-prefixes", config["judge_validation"].get("reference_prefixes")
        ),
    shell:
        "python -m opsa --threads {threads} {params.run_on} validate-judge --labelled {input.labelled:q} --judge {wildcards.judge} "
        "{params.reference} "
        "--spec {params.spec:q} --judge-model {params.judge_model:q} --out {output} > {log} 2>&1"
