rule context_candidates:
    input:
        model=base_model,
        files=lambda wc: plan.context_files(),
        code=package_code("context-candidates"),
    output:
        P.candidates,
    log:
        "logs/context_candidates/{model}.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        run_on=runtime_args(),
        spec=as_json(config["contexts"]["candidates"]),
    shell:
        "python -m opsa --threads {threads} {params.run_on} context-candidates --spec {params.spec:q} "
        "--model-dir {input.model} --out {output} > {log} 2>&1"


rule flip_rate_baseline:
    input:
        unpack(training_sets),
        borderline=lambda wc: plan.borderline_sets(),
        model=base_model,
        code=package_code("flip-baseline"),
    output:
        P.flip_baseline,
    log:
        "logs/flip_rate_baseline/{model}.log",
    benchmark:
        "benchmarks/flip_rate_baseline/{model}.tsv"
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(4000, 4000),
        runtime=runtime_by_scale(120, 360),
        gpu=1,
    params:
        run_on=runtime_args(),
        n_harmful=config["contexts"]["n_harmful"],
        n_benign=config["contexts"]["n_benign"],
        borderline=lambda wc, input: " ".join(f"--borderline {p}" for p in input.borderline),
        n_borderline=config["contexts"]["n_borderline"],
        seed=config["seed"],
        sampling=as_json(config["contexts"]["sampling"]),
    shell:
        "python -m opsa --threads {threads} {params.run_on} flip-baseline --model-dir {input.model} "
        "--harmful {input.harmful} --benign {input.benign} --n-harmful {params.n_harmful:q} "
        "--n-benign {params.n_benign:q} {params.borderline} --n-borderline {params.n_borderline:q} "
        "--seed {params.seed:q} --sampling {params.sampling:q} --out {output} > {log} 2>&1"


rule judge_flip_rate_baseline:
    input:
        unpack(judge_inputs(config["contexts"]["judge"])),
        baseline=P.flip_baseline,
        code=package_code("flip-judge-baseline"),
    output:
        P.flip_baseline_judged,
    log:
        "logs/judge_flip_rate_baseline/{model}.log",
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=1,
    params:
        run_on=runtime_args(),
        judge=config["contexts"]["judge"],
        spec=as_json(config["judges"][config["contexts"]["judge"]]),
        judge_model=lambda wc, input: input.get("judge_model", "none"),
        sampling=as_json(config["contexts"]["sampling"]),
    shell:
        "python -m opsa --threads {threads} {params.run_on} flip-judge-baseline --baseline {input.baseline} "
        "--sampling {params.sampling:q} --judge {params.judge:q} --spec {params.spec:q} "
        "--judge-model {params.judge_model:q} --out {output} > {log} 2>&1"


rule score_flip_rate:
    input:
        unpack(judge_inputs(config["contexts"]["judge"])),
        model=base_model,
        candidates=P.candidates,
        baseline=P.flip_baseline_judged,
        code=package_code("flip-score"),
    output:
        scores=P.flip_shard,
        responses=P.flip_shard_responses,
    log:
        "logs/score_flip_rate/{model}/shard{shard}.log",
    benchmark:
        "benchmarks/score_flip_rate/{model}/shard{shard}.tsv"
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(4000, 8000),
        runtime=runtime_by_scale(240, 720),
        gpu=1,
    params:
        run_on=runtime_args(),
        shards=config["contexts"]["shards"],
        judge=config["contexts"]["judge"],
        spec=as_json(config["judges"][config["contexts"]["judge"]]),
        judge_model=lambda wc, input: input.get("judge_model", "none"),
        sampling=as_json(config["contexts"]["sampling"]),
        seed=config["seed"],
    shell:
        "python -m opsa --threads {threads} {params.run_on} flip-score --model-dir {input.model} "
        "--candidates {input.candidates} --baseline {input.baseline} "
        "--shard {wildcards.shard} --shards {params.shards:q} --sampling {params.sampling:q} "
        "--seed {params.seed:q} --judge {params.judge:q} --spec {params.spec:q} "
        "--judge-model {params.judge_model:q} --out {output.scores} > {log} 2>&1"


rule merge_flip_rates:
    input:
        scores=flip_rate_shards,
        code=package_code("flip-merge"),
    output:
        P.flip_rates,
    log:
        "logs/merge_flip_rates/{model}.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    shell:
        "python -m opsa --threads {threads} flip-merge --scores {input.scores:q} --out {output} "
        "> {log} 2>&1"


rule search_contexts:
    input:
        unpack(judge_inputs(config["contexts"]["judge"])),
        model=base_model,
        candidates=P.candidates,
        baseline=P.flip_baseline_judged,
        scores=P.flip_rates,
        code=package_code("context-search"),
    output:
        candidates=P.searched_candidates,
        scores=P.searched_flip_rates,
    log:
        "logs/search_contexts/{model}.log",
    benchmark:
        "benchmarks/search_contexts/{model}.tsv"
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(4000, 8000),
        runtime=runtime_by_scale(480, 1440),
        gpu=1,
    params:
        run_on=runtime_args(),
        search=as_json(config["contexts"]["search"]),
        selection=as_json(config["contexts"]["selection"]),
        judge=config["contexts"]["judge"],
        spec=as_json(config["judges"][config["contexts"]["judge"]]),
        judge_model=lambda wc, input: input.get("judge_model", "none"),
        sampling=as_json(config["contexts"]["sampling"]),
    shell:
        "python -m opsa --threads {threads} {params.run_on} context-search --model-dir {input.model} "
        "--candidates {input.candidates} --scores {input.scores} --baseline {input.baseline} "
        "--search {params.search:q} --selection {params.selection:q} "
        "--sampling {params.sampling:q} --judge {params.judge:q} --spec {params.spec:q} "
        "--judge-model {params.judge_model:q} --out {output.candidates} "
        "--out-scores {output.scores} "
        "> {log} 2>&1"


checkpoint select_context:
    input:
        unpack(selection_inputs),
        code=package_code("select-context"),
    output:
        selected=P.selected,
        ranking=report(
            P.ranking,
            caption="../report/ranking.rst",
            category="Context search",
            labels={"model": "{model}", "table": "ranking"},
        ),
        teachers=P.teachers,
    log:
        "logs/select_context/{model}.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    params:
        selection=as_json(config["contexts"]["selection"]),
        scores=lambda wc, input: input.get("scores", ""),
        seed=config["seed"],
    shell:
        "python -m opsa --threads {threads} select-context --scores {params.scores} "
        "--candidates {input.candidates} --selection {params.selection:q} "
        "--out {output.selected} --ranking {output.ranking} --teachers {output.teachers} "
        "--seed {params.seed:q} > {log} 2>&1"


rule export_chosen_contexts:
    input:
        P.selected,
    output:
        P.chosen,
    log:
        "logs/export_chosen_contexts/{model}/{harmful}--{benign}.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    shell:
        "cp {input:q} {output:q} 2> {log}"


rule ranked_context:
    input:
        unpack(selection_inputs),
        ranking=P.ranking,
        selected=P.selected,
        code=package_code("ranked-context"),
    output:
        P.ranked_context,
    log:
        "logs/ranked_context/{model}/{position}.log",
    wildcard_constraints:
        position="middle|last",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m opsa --threads {threads} ranked-context --ranking {input.ranking} "
        "--selected {input.selected} --candidates {input.candidates} "
        "--position {wildcards.position} --out {output} > {log} 2>&1"


rule plot_flip_rates:
    input:
        ranking=P.ranking,
        code=package_code("flip-plot"),
    output:
        report(
            P.flip_rate_plot,
            caption="../report/flip_rates.rst",
            category="Context search",
            labels={"model": "{model}", "figure": "teacher flip rate"},
        ),
    log:
        "logs/plot_flip_rates/{model}.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    params:
        rate=config["contexts"]["selection"]["tfr"],
    shell:
        "python -m opsa --threads {threads} flip-plot --scores {input.ranking} --rate {params.rate:q} "
        "--out {output} > {log} 2>&1"


rule plot_teachers:
    input:
        teachers=P.teachers,
        steered=lambda wc: plan.steered_teachers(wc.model),
        code=package_code("teacher-plot"),
    output:
        report(
            P.teacher_plot,
            caption="../report/teachers.rst",
            category="Context search",
            labels={"model": "{model}", "figure": "teachers"},
        ),
    log:
        "logs/plot_teachers/{model}.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    params:
        steered=lambda wc, input: optional_arg("--steered", " ".join(input.steered) or None),
    shell:
        "python -m opsa --threads {threads} teacher-plot --teachers {input.teachers} "
        "{params.steered} --out {output} > {log} 2>&1"
