# Tables: per scene, and mean ± std per method × dataset × degradation × metric.
# Scores are first listed per dataset, so that a dataset whose scene list waits for its
# download (a checkpoint) does not hold back the DAG of the others.


rule list_scores:
    input:
        scores=dataset_score_files,
        # the batches make each entry × dataset × degradation one cluster job (evaluate.smk)
        batches=dataset_batch_files,
    output:
        "results/tables/scores/{dataset}.txt",
    localrule: True
    log:
        "results/logs/report/list_scores_{dataset}.log",
    conda:
        "../envs/hmifbench.yaml"
    run:
        # A paper-scale run has thousands of score files: too many for one command line.
        with open(output[0], "w") as listing:
            listing.writelines(f"{path}\n" for path in input.scores)


rule report_tables:
    input:
        expand("results/tables/scores/{dataset}.txt", dataset=config["datasets"]),
    output:
        summary="results/tables/summary.csv",
        markdown="results/tables/summary.md",
        per_scene="results/tables/per_scene.csv",
    log:
        "results/logs/report/tables.log",
    conda:
        "../envs/hmifbench.yaml"
    params:
        listing="results/tables/scores/all.txt",
    shell:
        "cat {input:q} > {params.listing:q} && "
        "hmifbench report --scores-from {params.listing:q} -o \"$(dirname {output.summary:q})\" > {log:q} 2>&1"
