rule offpolicy_pairs:
    input:
        unpack(judge_inputs(config["training"]["offpolicy"]["judge"])),
        unpack(training_sets),
        model=base_model,
        contexts=chosen_contexts,
        code=package_code("offpolicy-pairs"),
    output:
        P.offpolicy_pairs,
    log:
        "logs/offpolicy_pairs/{model}.log",
    benchmark:
        "benchmarks/offpolicy_pairs/{model}.tsv"
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(4000, 8000),
        runtime=runtime_by_scale(240, 720),
        gpu=1,
    params:
        run_on=runtime_args(),
        sampling=as_json(config["training"]["offpolicy"]["sampling"]),
        judge=judge_params(config["training"]["offpolicy"]["judge"]),
        judge_model=lambda wc, input: input.get("judge_model", "none"),
        keep_all="" if config["training"]["offpolicy"]["filter"] else "--no-filter",
    shell:
        "python -m opsa --threads {threads} {params.run_on} offpolicy-pairs --model-dir {input.model} "
        "--harmful {input.harmful} --benign {input.benign} --contexts {input.contexts:q} "
        "--sampling {params.sampling:q} {params.judge} {params.keep_all} "
        "--judge-model {params.judge_model:q} --out {output} > {log} 2>&1"


rule external_pairs:
    input:
        files=lambda wc: plan.source_files([config["training"]["external"]["source"]]),
        code=package_code("external-pairs"),
    output:
        P.external_pairs,
    log:
        "logs/external_pairs/external_pairs.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    params:
        source=lambda wc: as_json(config["training"]["external"]["source"]),
        n=lambda wc: optional_arg("--n", config["training"]["external"].get("n")),
        seed=config["seed"],
    shell:
        "python -m opsa --threads {threads} external-pairs --source {params.source:q} "
        "{params.n} --seed {params.seed:q} --out {output} > {log} 2>&1"


rule steering_direction:
    input:
        unpack(training_sets),
        model=base_model,
        code=package_code("steering-direction"),
    output:
        direction=P.direction,
        scan=P.direction_scan,
    log:
        "logs/steering_direction/{model}.log",
    benchmark:
        "benchmarks/steering_direction/{model}.tsv"
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(3000, 4000),
        runtime=runtime_by_scale(30, 120),
        gpu=1,
    params:
        run_on=runtime_args(),
        settings=as_json(config["training"]["safesteer"]["direction"]),
    shell:
        "python -m opsa --threads {threads} {params.run_on} steering-direction "
        "--model-dir {input.model} --harmful {input.harmful} --harmless {input.benign} "
        "--settings {params.settings:q} --out {output.direction} --scan {output.scan} "
        "> {log} 2>&1"


rule steered_teacher:
    input:
        unpack(judge_inputs(config["contexts"]["judge"])),
        model=base_model,
        direction=P.direction,
        baseline=P.flip_baseline_judged,
        code=package_code("steered-teacher"),
    output:
        P.steered_teacher,
    log:
        "logs/steered_teacher/{model}.log",
    benchmark:
        "benchmarks/steered_teacher/{model}.tsv"
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(4000, 8000),
        runtime=runtime_by_scale(60, 240),
        gpu=1,
    params:
        run_on=runtime_args(),
        coefficient=config["training"]["safesteer"]["coefficient"],
        settings=as_json(config["training"]["safesteer"]["teacher"]),
        sampling=as_json(config["contexts"]["sampling"]),
        seed=config["seed"],
        judge=config["contexts"]["judge"],
        spec=as_json(config["judges"][config["contexts"]["judge"]]),
        judge_model=lambda wc, input: input.get("judge_model", "none"),
    shell:
        "python -m opsa --threads {threads} {params.run_on} steered-teacher "
        "--model-dir {input.model} --direction {input.direction} --baseline {input.baseline} "
        "--coefficient {params.coefficient:q} --settings {params.settings:q} "
        "--sampling {params.sampling:q} --seed {params.seed:q} --judge {params.judge:q} "
        "--spec {params.spec:q} --judge-model {params.judge_model:q} --out {output} > {log} 2>&1"


rule safety_tokens:
    input:
        prompts=lambda wc: training_set("train_benign"),
        model=base_model,
        direction=P.direction,
        teacher=P.steered_teacher,  # the gate: no safety tokens (no training) after a failing teacher
        code=package_code("safety-tokens"),
    output:
        tokens=P.safety_tokens,
        table=report(
            P.safety_token_table,
            caption="../report/safety_tokens.rst",
            category="SafeSteer",
        ),
    log:
        "logs/safety_tokens/{model}.log",
    benchmark:
        "benchmarks/safety_tokens/{model}.tsv"
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(3000, 4000),
        runtime=runtime_by_scale(30, 120),
        gpu=1,
    params:
        run_on=runtime_args(),
        coefficient=config["training"]["safesteer"]["coefficient"],
        settings=as_json(config["training"]["safesteer"]["tokens"]),
        seed=config["seed"],
    shell:
        "python -m opsa --threads {threads} {params.run_on} safety-tokens "
        "--model-dir {input.model} --prompts {input.prompts} --direction {input.direction} "
        "--coefficient {params.coefficient:q} --settings {params.settings:q} "
        "--seed {params.seed:q} --out {output.tokens} --summary {output.table} > {log} 2>&1"


# Every training method (opsa.training.methods.METHODS): its named inputs, its settings.
rule train:
    input:
        unpack(training_inputs),
        model=base_model,
        code=package_code("train"),
    output:
        directory(P.model),
    log:
        "logs/train/{model}/{variant}.log",
    benchmark:
        "benchmarks/train/{model}/{variant}.tsv"
    wildcard_constraints:
        variant=TRAINED,
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(4000, 12000),
        runtime=runtime_by_scale(720, 2880),
        gpu=train_gpus,
    params:
        run_on=runtime_args(),
        method=lambda wc: Variant.parse(wc.variant).method,
        settings=lambda wc: as_json(cfg.settings_for(Variant.parse(wc.variant))),
        inputs=training_input_args,
        work_dir=P.checkpoints,
        processes=train_gpus,
    shell:
        "python -m opsa --threads {threads} {params.run_on} train {params.method} "
        "--config {params.settings:q} --processes {params.processes} "
        "--model-dir {input.model} {params.inputs} --out {output} "
        "--work-dir {params.work_dir:q} > {log} 2>&1"
