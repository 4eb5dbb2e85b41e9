rule token_divergence:
    input:
        teacher=base_model,
        models=lambda wc: [model_dir(wc.model, v) for v in cfg.variants()],
        rollouts=lambda wc: fill(
            P.generations, model=wc.model, variant=BASE, dataset=analysis_set("token_divergence")
        ),
        contexts=P.selected,
        code=package_code("token-divergence"),
    output:
        analysis=P.token_divergence,
        plot=report(
            P.token_divergence_plot,
            caption="../report/token_divergence.rst",
            category="Token-level analysis",
            labels={"model": "{model}"},
        ),
    log:
        "logs/token_divergence/{model}.log",
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(4000, 8000),
        runtime=runtime_by_scale(60, 240),
        gpu=1,
    params:
        run_on=runtime_args(),
        models=lambda wc: [f"{v}={model_dir(wc.model, v)}" for v in cfg.variants()],
        settings=analysis_settings("token_divergence"),
        trust=lambda wc: config["models"][wc.model]["trust_remote_code"],
    shell:
        "python -m opsa --threads {threads} {params.run_on} token-divergence "
        "--teacher {input.teacher} --models {params.models:q} --rollouts {input.rollouts} "
        "--contexts {input.contexts} --settings {params.settings:q} "
        "--trust-remote-code {params.trust:q} --out {output.analysis} --plot {output.plot} "
        "> {log} 2>&1"


rule flip_rate_outcome:
    input:
        evals=lambda wc: plan.tfr_evaluations(wc.model),
        contexts=lambda wc: plan.tfr_contexts(wc.model).values(),
        ranking=P.ranking,
        code=package_code("flip-rate-outcome"),
    output:
        analysis=P.flip_rate_outcome,
        plot=report(
            P.flip_rate_outcome_plot,
            caption="../report/flip_rate_outcome.rst",
            category="Flip rate against outcome",
            labels={"model": "{model}"},
        ),
    log:
        "logs/flip_rate_outcome/{model}.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        contexts=lambda wc: [f"{v}={path}" for v, path in plan.tfr_contexts(wc.model).items()],
    shell:
        "python -m opsa --threads {threads} flip-rate-outcome --evals {input.evals:q} "
        "--contexts {params.contexts:q} --ranking {input.ranking} --out {output.analysis} "
        "--plot {output.plot} > {log} 2>&1"
