rule prepare_data:
    output:
        sets=expand("results/data/{dataset}.jsonl", dataset=list(config["datasets"])),
        provenance="results/data/provenance.json",
    log:
        "logs/prepare_data/prepare_data.log",
    benchmark:
        "benchmarks/prepare_data/prepare_data.tsv"
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        sets=as_json(config["datasets"]),
        seed=config["seed"],
    shell:
        "python -m opsa --threads {threads} prepare-data --sets {params.sets:q} --seed {params.seed} "
        "--out-dir results/data > {log} 2>&1"
