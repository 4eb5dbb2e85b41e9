from pathlib import Path

from snakemake.utils import min_version

from opsa.cli.failures import print_failed_jobs
from opsa.config_check import check_config, check_config_files

min_version("9.0")

# Every problem in the config ends the run here with one line naming the file and line or key.
check_config_files(["config.yaml", *workflow.overwrite_configfiles])


configfile: "config.yaml"


check_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


wildcard_constraints:
    model=r"[A-Za-z0-9_.\-]+",
    variant=r"[A-Za-z0-9_\-]+",
    dataset=r"[A-Za-z0-9_\-]+",
    judge=r"[A-Za-z0-9_\-]+",
    shard=r"\d+",
    attack=r"prefilling|templates|pap|pair",


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/contexts.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/judge.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/jailbreak.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs,


# The targets of the `dvc repro` stages (dvc.yaml), one per stage; the last stage is `all`.
rule stage_prepare_data:
    input:
        prepared_sets(),


rule stage_train:
    input:
        model_dirs(),


rule stage_generate:
    input:
        generation_files(),


rule stage_judge:
    input:
        judgment_files(),


rule stage_evaluate:
    input:
        evaluation_files(),


onerror:
    print_failed_jobs(workflow.scheduler.failed)  # each failed job's one-line cause
