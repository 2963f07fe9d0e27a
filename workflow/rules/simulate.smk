# Simulated (LR-HSI, HR-MSI) pairs under each named degradation protocol.


rule simulate_pair:
    input:
        "results/scenes/{dataset}/{scene}.hdr",
    output:
        truth="results/pairs/{dataset}/{degradation}/{scene}/truth.json",
        cubes=multiext("results/pairs/{dataset}/{degradation}/{scene}/", "lr_hsi.hdr", "lr_hsi.img",
                       "hr_msi.hdr", "hr_msi.img"),
    log:
        "results/logs/simulate/{dataset}/{degradation}/{scene}.log",
    conda:
        "../envs/hmifbench.yaml"
    group:
        "prepare_simulate"
    params:
        seed=config["seed"],
        sweep=lambda wc: sweep_args(wc.degradation),
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=10,
        **site_resources(False),
    shell:
        "hmifbench simulate {input:q} {wildcards.degradation:q} -o \"$(dirname {output.truth:q})\" "
        "--seed {params.seed:q} --scene-id {wildcards.dataset:q}/{wildcards.scene:q} {params.sweep:q} > {log:q} 2>&1"


rule prepare_real_pair:
    input:
        download_input,
    output:
        truth="results/pairs/{dataset}/real/{scene}/truth.json",
        cubes=multiext("results/pairs/{dataset}/real/{scene}/", "lr_hsi.hdr", "lr_hsi.img",
                       "hr_msi.hdr", "hr_msi.img"),
    log:
        "results/logs/prepare_real_pair/{dataset}/{scene}.log",
    conda:
        "../envs/hmifbench.yaml"
    group:
        "prepare_simulate"
    params:
        options=lambda wc: dataset_options(wc.dataset, real=True),
        root=DATA_ROOT,
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=20,
        **site_resources(False),
    shell:
        "hmifbench prepare-pair {wildcards.dataset:q} {wildcards.scene:q} -o \"$(dirname {output.truth:q})\" "
        "--root {params.root:q} {params.options:q} > {log:q} 2>&1"


# The degradation 'real' names read pairs, not a simulation protocol.
ruleorder: prepare_real_pair > simulate_pair
