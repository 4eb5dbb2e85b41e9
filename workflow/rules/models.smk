rule prepare_model:
    input:
        code=package_code("prepare-model"),
    output:
        directory(fill(P.model, model="{model}", variant=BASE)),
    log:
        "logs/prepare_model/{model}.log",
    benchmark:
        "benchmarks/prepare_model/{model}.tsv"
    conda:
        "../../envs/cpu.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(4000, 4000),
        runtime=runtime_by_scale(60, 180),
    params:
        spec=lambda wc: as_json(config["models"][wc.model]),
    shell:
        "python -m opsa --threads {threads} prepare-model --spec {params.spec:q} --out {output} > {log} 2>&1"
