rule offpolicy_pairs:
    input:
        unpack(offpolicy_judge_input),
        unpack(training_sets),
        model="results/models/{model}/base",
        contexts=chosen_contexts,
        code=package_code("offpolicy-pairs"),
    output:
        "results/training_data/{model}/offpolicy.jsonl",
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
        judge=config["training"]["offpolicy"]["judge"],
        spec=as_json(config["judges"][config["training"]["offpolicy"]["judge"]]),
        judge_model=lambda wc, input: input.get("judge_model", "none"),
    shell:
        "python -m opsa --threads {threads} {params.run_on} offpolicy-pairs --model-dir {input.model} "
        "--harmful {input.harmful} --benign {input.benign} --contexts {input.contexts:q} "
        "--sampling {params.sampling:q} --judge {params.judge:q} --spec {params.spec:q} "
        "--judge-model {params.judge_model:q} --out {output} > {log} 2>&1"


rule external_pairs:
    input:
        files=external_source_files,
        code=package_code("external-pairs"),
    output:
        "results/training_data/external.jsonl",
    log:
        "logs/external_pairs/external_pairs.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    params:
        source=lambda wc: as_json(config["training"]["external"]["source"]),
        n=lambda wc: external_n_argument(),
        seed=config["seed"],
    shell:
        "python -m opsa --threads {threads} external-pairs --source {params.source:q} "
        "{params.n} --seed {params.seed:q} --out {output} > {log} 2>&1"


rule train_opsa:
    input:
        unpack(training_sets),
        model="results/models/{model}/base",
        contexts=chosen_contexts,
        code=package_code("train"),
    output:
        directory("results/models/{model}/{variant}"),
    log:
        "logs/train/{model}/{variant}.log",
    benchmark:
        "benchmarks/train/{model}/{variant}.tsv"
    wildcard_constraints:
        variant=r"opsa(-seed\d+|-frac\d+|-tfr(middle|last))?",
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(4000, 12000),
        runtime=runtime_by_scale(720, 2880),
        gpu=train_gpus,
    params:
        run_on=runtime_args(),
        settings=lambda wc: as_json(training_settings("opsa", wc.variant)),
        work_dir="results/checkpoints/{model}/{variant}",
        processes=train_gpus,
    shell:
        "python -m opsa --threads {threads} {params.run_on} train opsa --config {params.settings:q} "
        "--processes {params.processes} "
        "--model-dir {input.model} --harmful {input.harmful} --benign {input.benign} "
        "--contexts {input.contexts:q} --out-dir {output} --work-dir {params.work_dir:q} "
        "> {log} 2>&1"


rule steering_direction:
    input:
        unpack(training_sets),
        model="results/models/{model}/base",
        code=package_code("steering-direction"),
    output:
        "results/steering/{model}/direction.safetensors",
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
        "--settings {params.settings:q} --out {output} > {log} 2>&1"


rule safety_tokens:
    input:
        prompts=benign_training_set,
        model="results/models/{model}/base",
        direction="results/steering/{model}/direction.safetensors",
        code=package_code("safety-tokens"),
    output:
        tokens="results/steering/{model}/safety_tokens.json",
        table=report(
            "results/steering/{model}/safety_tokens.md",
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


rule train_safesteer:
    input:
        harmful=harmful_training_set,
        model="results/models/{model}/base",
        direction="results/steering/{model}/direction.safetensors",
        tokens="results/steering/{model}/safety_tokens.json",
        code=package_code("train"),
    output:
        directory("results/models/{model}/{variant}"),
    log:
        "logs/train/{model}/{variant}.log",
    benchmark:
        "benchmarks/train/{model}/{variant}.tsv"
    wildcard_constraints:
        variant=r"safesteer(-seed\d+)?",
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(4000, 12000),
        runtime=runtime_by_scale(720, 2880),
        gpu=train_gpus,
    params:
        run_on=runtime_args(),
        settings=lambda wc: as_json(training_settings("safesteer", wc.variant)),
        work_dir="results/checkpoints/{model}/{variant}",
        processes=train_gpus,
    shell:
        "python -m opsa --threads {threads} {params.run_on} train safesteer "
        "--config {params.settings:q} --processes {params.processes} "
        "--model-dir {input.model} --harmful {input.harmful} --direction {input.direction} "
        "--safety-tokens {input.tokens} --out-dir {output} --work-dir {params.work_dir:q} "
        "> {log} 2>&1"


rule train_sft:
    input:
        model="results/models/{model}/base",
        pairs=sft_pairs,
        code=package_code("train"),
    output:
        directory("results/models/{model}/{variant}"),
    log:
        "logs/train/{model}/{variant}.log",
    benchmark:
        "benchmarks/train/{model}/{variant}.tsv"
    wildcard_constraints:
        variant=r"(offpolicy_sd|external_teacher)(-seed\d+|-frac\d+)?",
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(4000, 12000),
        runtime=runtime_by_scale(720, 2880),
        gpu=train_gpus,
    params:
        run_on=runtime_args(),
        settings=lambda wc: as_json(training_settings("sft", wc.variant)),
        work_dir="results/checkpoints/{model}/{variant}",
        processes=train_gpus,
    shell:
        "python -m opsa --threads {threads} {params.run_on} train sft --config {params.settings:q} "
        "--processes {params.processes} "
        "--model-dir {input.model} --pairs {input.pairs} --out-dir {output} "
        "--work-dir {params.work_dir:q} > {log} 2>&1"
