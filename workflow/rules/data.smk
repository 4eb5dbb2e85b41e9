rule prepare_data:
    input:
        unpack(lambda wc: plan.data_inputs(wc.dataset)),
        code=package_code("prepare-data"),
    output:
        prompts=P.data,
        provenance=P.provenance,
    log:
        "logs/prepare_data/{dataset}.log",
    benchmark:
        "benchmarks/prepare_data/{dataset}.tsv"
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        spec=lambda wc: as_json(config["datasets"][wc.dataset]),
        seed=config["seed"],
        training=lambda wc, input: input.get("training", []),
    shell:
        "python -m opsa --threads {threads} prepare-data --name {wildcards.dataset} "
        "--spec {params.spec:q} --seed {params.seed:q} --decontaminate {params.training:q} "
        "--out {output.prompts} --provenance {output.provenance} > {log} 2>&1"
