rule generate:
    input:
        model=P.model,
        prompts=P.data,
        code=package_code("generate"),
    output:
        P.generations,
    log:
        "logs/generate/{model}/{variant}/{dataset}.log",
    benchmark:
        "benchmarks/generate/{model}/{variant}/{dataset}.tsv"
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(4000, 4000),
        runtime=runtime_by_scale(120, 360),
        gpu=1,
    params:
        run_on=runtime_args(),
        sampling=lambda wc: as_json(cfg.sampling_for(wc.dataset)),
        trust=lambda wc: config["models"][wc.model]["trust_remote_code"],
    shell:
        "python -m opsa --threads {threads} {params.run_on} generate --model {input.model} --prompts {input.prompts} "
        "--sampling {params.sampling:q} --trust-remote-code {params.trust:q} "
        "--out {output} > {log} 2>&1"
