rule generate:
    input:
        model="results/models/{model}/{variant}",
        prompts="results/data/{dataset}.jsonl",
        code=package_code("generate"),
    output:
        "results/generations/{model}/{variant}/{dataset}.jsonl",
    log:
        "logs/generate/{model}/{variant}/{dataset}.log",
    benchmark:
        "benchmarks/generate/{model}/{variant}/{dataset}.tsv"
    conda:
        "../../envs/opsa.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1,
    params:
        run_on=runtime_args(),
        sampling=lambda wc: sampling_for(wc.dataset),
        trust=lambda wc: config["models"][wc.model]["trust_remote_code"],
    shell:
        "python -m opsa --threads {threads} {params.run_on} generate --model {input.model} --prompts {input.prompts} "
        "--sampling {params.sampling:q} --trust-remote-code {params.trust:q} "
        "--out {output} > {log} 2>&1"
