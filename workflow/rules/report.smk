rule report:
    input:
        evals=plan.evaluations(),
        token=plan.token_divergences(),
        jailbreak=plan.jailbreaks(),
        curves=plan.training_curves(),
        sweep=plan.size_sweeps(),
        tfr=plan.flip_rate_outcomes(),
        safesteer=plan.safety_token_tables(),
        teachers=plan.teacher_files(),
        scans=plan.direction_scans(),
        steered=plan.steered_teachers(),
        validations=plan.judge_validations(),
        code=package_code("report"),
    output:
        csv=report(
            P.summary_csv,
            caption="../report/summary.rst",
            category="Summary",
        ),
        metrics=P.summary_json,
        paired=P.paired_csv,
        md=report(
            P.summary_md,
            caption="../report/summary.rst",
            category="Summary",
        ),
        plot=report(
            P.safety_vs_reasoning,
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
        judges=as_json(config["judges"]),
        jailbreak_judge=plan.jailbreak_judge() if plan.jailbreaks() else "",
    shell:
        "python -m opsa --threads {threads} report --evals {input.evals:q} "
        "--token-divergence {input.token:q} --jailbreak {input.jailbreak:q} "
        "--training-curves {input.curves:q} --size-sweep {input.sweep:q} "
        "--flip-rate-outcome {input.tfr:q} --safesteer {input.safesteer:q} "
        "--teachers {input.teachers:q} --direction-scans {input.scans:q} "
        "--steered-teachers {input.steered:q} "
        "--judges {params.judges:q} --judge-validations {input.validations:q} "
        "--jailbreak-judge={params.jailbreak_judge:q} --baseline {params.baseline:q} "
        "--out-csv {output.csv} --out-json {output.metrics} "
        "--out-paired {output.paired} --out-md {output.md} --out-plot {output.plot} > {log} 2>&1"


rule training_curves:
    input:
        models=lambda wc: [model_dir(wc.model, v) for v in cfg.trained_variants()],
        code=package_code("training-curves"),
    output:
        report(
            P.training_curves_plot,
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
        models=lambda wc: [f"{v}={model_dir(wc.model, v)}" for v in cfg.trained_variants()],
    shell:
        "python -m opsa --threads {threads} training-curves --models {params.models:q} "
        "--out {output} > {log} 2>&1"


rule size_sweep:
    input:
        evals=lambda wc: plan.sweep_evaluations(wc.model),
        code=package_code("size-sweep"),
    output:
        analysis=P.size_sweep,
        plot=report(
            P.size_sweep_plot,
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
        points=plan.sweep_points(),
    shell:
        "python -m opsa --threads {threads} size-sweep --evals {input.evals:q} "
        "--points {params.points:q} --out {output.analysis} --plot {output.plot} > {log} 2>&1"


rule grid_report:
    input:
        evals=plan.evaluations(),
        code=package_code("grid-report"),
    output:
        csv=P.grid_csv,
        md=report(
            P.grid_md,
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
        source=optional_arg("--source", config["grid_report"].get("published_source")),
    shell:
        "python -m opsa --threads {threads} grid-report --evals {input.evals:q} "
        "--method {params.method} --baseline {params.baseline} "
        "--published {params.published:q} {params.source} "
        "--out-csv {output.csv} --out-md {output.md} > {log} 2>&1"
