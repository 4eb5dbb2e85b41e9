rule jailbreak_attacks:
    input:
        prompts=lambda wc: fill(P.data, dataset=analysis_set("jailbreak")),
        templates=jailbreak_template_files,
        code=package_code("jailbreak-attacks"),
    output:
        P.attacks,
    log:
        "logs/jailbreak_attacks/{attack}.log",
    wildcard_constraints:
        attack="prefilling|templates",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        settings=analysis_settings("jailbreak"),
        seed=config["seed"],
    shell:
        "python -m opsa --threads {threads} jailbreak-attacks --attack {wildcards.attack} "
        "--prompts {input.prompts} --settings {params.settings:q} --seed {params.seed} "
        "--out {output} > {log} 2>&1"


rule jailbreak_pap:
    input:
        prompts=lambda wc: fill(P.data, dataset=analysis_set("jailbreak")),
        attacker=lambda wc: model_dir(jailbreak_attacker()),
        code=package_code("jailbreak-paraphrase"),
    output:
        fill(P.attacks, attack="pap"),
    log:
        "logs/jailbreak_attacks/pap.log",
    benchmark:
        "benchmarks/jailbreak_attacks/pap.tsv"
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc: int(4000 + 4000 * cfg.billions(jailbreak_attacker())),
        runtime=120,
        gpu=1,
    params:
        run_on=runtime_args(),
        settings=analysis_settings("jailbreak"),
        seed=config["seed"],
        trust=lambda wc: config["models"][jailbreak_attacker()]["trust_remote_code"],
    shell:
        "python -m opsa --threads {threads} {params.run_on} jailbreak-paraphrase "
        "--prompts {input.prompts} --attacker {input.attacker} --settings {params.settings:q} "
        "--seed {params.seed} --trust-remote-code {params.trust:q} --out {output} > {log} 2>&1"


rule jailbreak_generate:
    input:
        model=P.model,
        attacks=P.attacks,
        code=package_code("jailbreak-generate"),
    output:
        P.jailbreak_responses,
    log:
        "logs/jailbreak_generate/{model}/{variant}/{attack}.log",
    benchmark:
        "benchmarks/jailbreak_generate/{model}/{variant}/{attack}.tsv"
    wildcard_constraints:
        attack="prefilling|templates|pap",
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb_by_scale(4000, 4000),
        runtime=runtime_by_scale(120, 360),
        gpu=1,
    params:
        run_on=runtime_args(),
        settings=analysis_settings("jailbreak"),
        seed=config["seed"],
        trust=lambda wc: config["models"][wc.model]["trust_remote_code"],
    shell:
        "python -m opsa --threads {threads} {params.run_on} jailbreak-generate "
        "--model {input.model} --attacks {input.attacks} --settings {params.settings:q} "
        "--seed {params.seed} --trust-remote-code {params.trust:q} --out {output} > {log} 2>&1"


rule jailbreak_pair:
    input:
        model=P.model,
        prompts=lambda wc: fill(P.data, dataset=analysis_set("jailbreak")),
        attacker=lambda wc: model_dir(jailbreak_attacker()),
        judge_model=lambda wc: plan.judge_models(jailbreak_judge()),
        judge_files=lambda wc: plan.judge_files(jailbreak_judge()),
        code=package_code("jailbreak-pair"),
    output:
        fill(P.jailbreak_responses, model="{model}", variant="{variant}", attack="pair"),
    log:
        "logs/jailbreak_generate/{model}/{variant}/pair.log",
    benchmark:
        "benchmarks/jailbreak_generate/{model}/{variant}/pair.tsv"
    conda:
        "../../envs/cuda.yaml"
    threads: 2
    resources:
        mem_mb=lambda wc: int(
            8000 + 4000 * (cfg.billions(wc.model) + cfg.billions(jailbreak_attacker()))
        ),
        runtime=runtime_by_scale(240, 720),
        gpu=1,
    params:
        run_on=runtime_args(),
        settings=analysis_settings("jailbreak"),
        seed=config["seed"],
        trust=lambda wc: config["models"][wc.model]["trust_remote_code"],
        judge=jailbreak_judge(),
        spec=as_json(config["judges"][jailbreak_judge()]),
        judge_model=lambda wc, input: input.judge_model or "none",
    shell:
        "python -m opsa --threads {threads} {params.run_on} jailbreak-pair --model {input.model} "
        "--attacker {input.attacker} --prompts {input.prompts} --settings {params.settings:q} "
        "--seed {params.seed} --trust-remote-code {params.trust:q} --judge {params.judge:q} "
        "--spec {params.spec:q} --judge-model {params.judge_model:q} --out {output} > {log} 2>&1"


use rule judge as jailbreak_judge with:
    input:
        generations=P.jailbreak_responses,
        judge_model=lambda wc: plan.judge_models(wc.judge),
        judge_files=lambda wc: plan.judge_files(wc.judge),
        code=package_code("judge"),
    output:
        P.jailbreak_judgments,
    log:
        "logs/jailbreak_judge/{model}/{variant}/{attack}.{judge}.log",
    benchmark:
        "benchmarks/jailbreak_judge/{model}/{variant}/{attack}.{judge}.tsv"


rule jailbreak:
    input:
        judgments=lambda wc: plan.jailbreak_judgments(wc.model).values(),
        code=package_code("jailbreak-score"),
    output:
        analysis=P.jailbreak,
        plot=report(
            P.jailbreak_plot,
            caption="../report/jailbreak.rst",
            category="Adaptive jailbreaks",
            labels={"model": "{model}"},
        ),
    log:
        "logs/jailbreak/{model}.log",
    conda:
        "../../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        runs=lambda wc: [
            f"{run}={path}" for run, path in plan.jailbreak_judgments(wc.model).items()
        ],
        bootstrap=config["evaluation"]["bootstrap"],
        seed=config["seed"],
    shell:
        "python -m opsa --threads {threads} jailbreak-score --model {wildcards.model} "
        "--judgments {params.runs:q} --bootstrap {params.bootstrap} --seed {params.seed} "
        "--out {output.analysis} --plot {output.plot} > {log} 2>&1"
