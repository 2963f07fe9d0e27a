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
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=10,
    shell:
        "hmifbench simulate {input} {wildcards.degradation} -o $(dirname {output.truth}) "
        "--seed {params.seed} --scene-id {wildcards.dataset}/{wildcards.scene} > {log} 2>&1"
