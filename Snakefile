# hmifbench: prepare -> simulate -> [train] -> fuse -> evaluate -> tables, figures.
# Quick suite (default):   snakemake --cores 2
# HTML report afterwards:  snakemake --report report.html
# Paper protocol:          snakemake --cores 8 --configfile config/paper.yaml --profile slurm
from snakemake.utils import min_version

min_version("9.0")


# The quick suite is the default; a --configfile given on the command line replaces it
# (Snakemake would otherwise deep-merge the two, mixing the quick suite into every run).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/fuse.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


localrules:
    all,
    report_tables,
    report_figures,
    report_sweeps,


# 'gpu' is counted per submitted job, not across the cluster: with 'resources: gpu=1' in a
# cluster profile, a group job holds one GPU and runs its GPU jobs one after the other, while
# any number of such group jobs can be queued (SLURM, not Snakemake, shares out the GPUs).
resource_scopes:
    gpu="local",


rule all:
    input:
        rules.report_tables.output,
        rules.report_figures.output,
        # only a config with sweeps has sweep results
        rules.report_sweeps.output if config.get("sweeps") else [],
    default_target: True
