# hmifbench: prepare -> simulate -> [train] -> fuse -> evaluate -> tables.
# Quick suite (default):   snakemake --cores 2
# Paper protocol:          snakemake --cores 8 --configfile config/paper.yaml --profile profiles/slurm
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/fuse.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


localrules:
    all,
    report_tables,


rule all:
    input:
        rules.report_tables.output,
    default_target: True
