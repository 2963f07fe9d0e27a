# Ground-truth scenes: normalised, cropped cubes from each dataset.


rule prepare_scene:
    input:
        download_input,
    output:
        hdr="results/scenes/{dataset}/{scene}.hdr",
        img="results/scenes/{dataset}/{scene}.img",
        record="results/scenes/{dataset}/{scene}.json",
    log:
        "results/logs/prepare/{dataset}/{scene}.log",
    conda:
        "../envs/hmifbench.yaml"
    group:
        # A scene and its simulated pairs are one cluster job; a scene that cannot be
        # prepared fails alone (its group is not packed with other scenes).
        "prepare_simulate"
    params:
        options=lambda wc: dataset_options(wc.dataset),
        root=DATA_ROOT,
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=20,
        **site_resources(False),
    shell:
        "hmifbench prepare {wildcards.dataset:q} {wildcards.scene:q} -o {output.hdr:q} "
        "--root {params.root:q} {params.options:q} > {log:q} 2>&1"
