# Ground-truth scenes: normalised, cropped cubes from each dataset.


rule prepare_scene:
    input:
        download_input,
    output:
        hdr="results/scenes/{dataset}/{scene}.hdr",
        img="results/scenes/{dataset}/{scene}.img",
    log:
        "results/logs/prepare/{dataset}/{scene}.log",
    conda:
        "../envs/hmifbench.yaml"
    params:
        options=lambda wc: dataset_options(wc.dataset),
    resources:
        mem_mb=4000,
        runtime=20,
    shell:
        "hmifbench prepare {wildcards.dataset} {wildcards.scene} -o {output.hdr} "
        "--root {DATA_ROOT} {params.options} > {log} 2>&1"
