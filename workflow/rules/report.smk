rule report:
    input:
        evals=evaluation_files(),
        token=token_divergence_files(),
        jailbreak=jailbreak_files(),
        curves=training_curve_files(),
        sweep=size_sweep_files(),
        tfr=flip_rate_outcome_files(),
        safesteer=safesteer_token_tables(),
        code=package_code("report"),
    output:
        csv=report(
            "results/report/summary.csv",
            caption="../report/summary.rst",
            category="Summary",
        ),
        metrics="results/report/summary.json",
        paired="results/report/paired.csv",
        md=report(
            "results/report/summary.md",
            caption="../report/summary.rst",
            category="Summary",
        ),
        plot=report(
            "results/report/safety_vs_reasoning.png",
            caption="../report/safety_vs_reasoning.rst",
            category="Summary",
        ),
    log:
        "logs/report/report.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        baseline=config["grid_report"]["baseline"],
        first_seed=training_seeds()[0],
    shell:
        "python -m opsa --threads {threads} report --evals {input.evals:q} "
        "--token-divergence {input.token:q} --jailbreak {input.jailbreak:q} "
        "--training-curves {input.curves:q} --size-sweep {input.sweep:q} "
        "--flip-rate-outcome {input.tfr:q} --safesteer {input.safesteer:q} "
        "--baseline {params.baseline:q} "
        "--first-seed {params.first_seed} --out-dir results/report > {log} 2>&1"


rule training_curves:
    input:
        models=lambda wc: [model_dir(wc.model, v) for v in trained_variants()],
        code=package_code("training-curves"),
    output:
        report(
            "results/report/training/{model}.png",
            caption="../report/training_curves.rst",
            category="Training",
            labels={"model": "{model}"},
        ),
    log:
        "logs/training_curves/{model}.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        models=lambda wc: [f"{v}={model_dir(wc.model, v)}" for v in trained_variants()],
    shell:
        "python -m opsa --threads {threads} training-curves --models {params.models:q} "
        "--out {output} > {log} 2>&1"


rule size_sweep:
    input:
        evals=lambda wc: sweep_evaluations(wc.model),
        code=package_code("size-sweep"),
    output:
        analysis="results/analysis/{model}/size_sweep.json",
        plot=report(
            "results/report/size_sweep/{model}.png",
            caption="../report/size_sweep.rst",
            category="Training-set size",
            labels={"model": "{model}"},
        ),
    log:
        "logs/size_sweep/{model}.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        points=sweep_points(),
    shell:
        "python -m opsa --threads {threads} size-sweep --evals {input.evals:q} "
        "--points {params.points:q} --out {output.analysis} --plot {output.plot} > {log} 2>&1"


rule grid_report:
    input:
        evals=evaluation_files(),
        code=package_code("grid-report"),
    output:
        csv="results/report/grid.csv",
        md=report(
            "results/report/grid.md",
            caption="../report/grid.rst",
            category="Summary",
        ),
    log:
        "logs/grid_report/grid_report.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        method=config["grid_report"]["method"],
        baseline=config["grid_report"]["baseline"],
        published=as_json(config["grid_report"]["published_gains"]),
        source=published_source_arg(),
        first_seed=training_seeds()[0],
    shell:
        "python -m opsa --threads {threads} grid-report --evals {input.evals:q} "
        "--method {params.method} --baseline {params.baseline} "
        "--published {params.published:q} {params.source} "
        "--first-seed {params.first_seed} "
        "--out-dir results/report > {log} 2>&1"
