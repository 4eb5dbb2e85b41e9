rule report:
    input:
        evals=evaluation_files(),
        code=package_code("report"),
    output:
        csv=report(
            "results/report/summary.csv",
            caption="../report/summary.rst",
            category="Summary",
        ),
        metrics="results/report/summary.json",
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
        "../../envs/opsa.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m opsa --threads {threads} report --evals {input.evals:q} --out-dir results/report > {log} 2>&1"
