rule context_candidates:
    input:
        model="results/models/{model}/base",
        files=context_files,
        code=package_code("context-candidates"),
    output:
        "results/contexts/{model}/candidates.jsonl",
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
        model="results/models/{model}/base",
        code=package_code("flip-baseline"),
    output:
        "results/contexts/{model}/baseline.jsonl",
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
        seed=config["seed"],
        sampling=as_json(config["contexts"]["sampling"]),
    shell:
        "python -m opsa --threads {threads} {params.run_on} flip-baseline --model-dir {input.model} "
        "--harmful {input.harmful} --benign {input.benign} --n-harmful {params.n_harmful:q} "
        "--n-benign {params.n_benign:q} --seed {params.seed:q} --sampling {params.sampling:q} "
        "--out {output} > {log} 2>&1"


rule judge_flip_rate_baseline:
    input:
        unpack(flip_rate_inputs),
        baseline="results/contexts/{model}/baseline.jsonl",
        code=package_code("flip-judge-baseline"),
    output:
        "results/contexts/{model}/baseline.judged.jsonl",
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
        unpack(flip_rate_inputs),
        model="results/models/{model}/base",
        candidates="results/contexts/{model}/candidates.jsonl",
        baseline="results/contexts/{model}/baseline.judged.jsonl",
        code=package_code("flip-score"),
    output:
        scores="results/contexts/{model}/scores/shard{shard}.csv",
        responses="results/contexts/{model}/scores/shard{shard}.responses.jsonl",
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
        "results/contexts/{model}/flip_rates.csv",
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
        unpack(flip_rate_inputs),
        model="results/models/{model}/base",
        candidates="results/contexts/{model}/candidates.jsonl",
        baseline="results/contexts/{model}/baseline.judged.jsonl",
        scores="results/contexts/{model}/flip_rates.csv",
        code=package_code("context-search"),
    output:
        candidates="results/contexts/{model}/search/candidates.jsonl",
        scores="results/contexts/{model}/search/flip_rates.csv",
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
        "--judge-model {params.judge_model:q} --out-dir results/contexts/{wildcards.model}/search "
        "> {log} 2>&1"


checkpoint select_context:
    input:
        unpack(selection_inputs),
        code=package_code("select-context"),
    output:
        selected="results/contexts/{model}/selected.json",
        ranking=report(
            "results/contexts/{model}/ranking.csv",
            caption="../report/ranking.rst",
            category="Context search",
            labels={"model": "{model}", "table": "ranking"},
        ),
    log:
        "logs/select_context/{model}.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    params:
        selection=as_json(config["contexts"]["selection"]),
        scores=lambda wc, input: input.get("scores", ""),
    shell:
        "python -m opsa --threads {threads} select-context --scores {params.scores} "
        "--candidates {input.candidates} --selection {params.selection:q} "
        "--out-dir results/contexts/{wildcards.model} > {log} 2>&1"


rule export_chosen_contexts:
    input:
        "results/contexts/{model}/selected.json",
    output:
        "results/contexts/{model}/chosen/{harmful}--{benign}.json",
    log:
        "logs/export_chosen_contexts/{model}/{harmful}--{benign}.log",
    threads: 1
    conda:
        "../../envs/cpu.yaml"
    shell:
        "cp {input:q} {output:q} 2> {log}"


rule ranked_context:
    input:
        unpack(selection_inputs),
        ranking="results/contexts/{model}/ranking.csv",
        selected="results/contexts/{model}/selected.json",
        code=package_code("ranked-context"),
    output:
        "results/contexts/{model}/tfr/{position}.json",
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
        ranking="results/contexts/{model}/ranking.csv",
        code=package_code("flip-plot"),
    output:
        report(
            "results/report/flip_rates/{model}.png",
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
