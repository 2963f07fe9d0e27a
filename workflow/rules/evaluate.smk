# Scores of every fuse output, with the metric profile recorded in each file.


rule evaluate:
    input:
        run="results/fused/{entry}/{dataset}/{degradation}/{scene}/run.json",
        reference="results/scenes/{dataset}/{scene}.hdr",
        truth="results/pairs/{dataset}/{degradation}/{scene}/truth.json",
    output:
        "results/scores/{entry}/{dataset}/{degradation}/{scene}.json",
    log:
        "results/logs/evaluate/{entry}/{dataset}/{degradation}/{scene}.log",
    conda:
        "../envs/hmifbench.yaml"
    group:
        lambda wc: fuse_group(wc.entry)
    params:
        profile=[f"--profile={p}" for p in metric_profiles()],  # a list: :q quotes each
        crop=config["metrics"]["crop"],
        data_range=config["metrics"]["data_range"],
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=10,
        **site_resources(entry_gpu),
    shell:
        "hmifbench evaluate {input.run:q} --reference {input.reference:q} "
        "--pair \"$(dirname {input.truth:q})\" -o {output:q} {params.profile:q} "
        "--crop {params.crop:q} --data-range {params.data_range:q} "
        "--label dataset={wildcards.dataset:q} --label degradation={wildcards.degradation:q} "
        "--label scene={wildcards.scene:q} > {log:q} 2>&1"


rule evaluate_real:
    input:
        run="results/fused/{entry}/{dataset}/real/{scene}/run.json",
        truth="results/pairs/{dataset}/real/{scene}/truth.json",
    output:
        "results/scores/{entry}/{dataset}/real/{scene}.json",
    log:
        "results/logs/evaluate/{entry}/{dataset}/real/{scene}.log",
    conda:
        "../envs/hmifbench.yaml"
    group:
        lambda wc: fuse_group(wc.entry)
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=10,
        **site_resources(entry_gpu),
    shell:
        "hmifbench evaluate {input.run:q} --pair \"$(dirname {input.truth:q})\" -o {output:q} "
        "--label dataset={wildcards.dataset:q} --label degradation=real "
        "--label scene={wildcards.scene:q} > {log:q} 2>&1"


# The degradation 'real' names read pairs, not a simulation protocol.
ruleorder: evaluate_real > evaluate


# One cluster job per entry × dataset × degradation: this listing depends on the scene's
# evaluate (and so fuse) jobs of that batch and shares their group, which makes the batch one
# connected group. (Packing with --group-components instead makes oversized groups once a
# checkpoint re-evaluates the DAG: snakemake/snakemake#1217, #1628.)
rule score_batch:
    input:
        batch_score_files,
    output:
        "results/scores/{entry}/{dataset}/{degradation}.batch",
    log:
        "results/logs/evaluate/{entry}/{dataset}/{degradation}.batch.log",
    conda:
        "../envs/hmifbench.yaml"
    group:
        lambda wc: fuse_group(wc.entry)
    resources:
        mem_mb=200,
        runtime=1,
        **site_resources(entry_gpu),
    shell:
        "printf '%s\\n' {input:q} > {output:q} 2> {log:q}"
