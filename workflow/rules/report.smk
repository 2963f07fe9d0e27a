# Tables: per scene, and mean ± std per method × dataset × degradation × metric.


rule report_tables:
    input:
        score_files(),
    output:
        summary="results/tables/summary.csv",
        markdown="results/tables/summary.md",
        per_scene="results/tables/per_scene.csv",
    log:
        "results/logs/report/tables.log",
    conda:
        "../envs/hmifbench.yaml"
    params:
        listing="results/tables/.scores.txt",
    shell:
        # The score list goes through a file: a paper-scale run has thousands of inputs.
        "printf '%s\\n' {input} > {params.listing} && "
        "hmifbench report --scores-from {params.listing} -o $(dirname {output.summary}) > {log} 2>&1"
