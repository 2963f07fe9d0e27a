# Tables (results, statistics, cost, published vs measured) and figures 1-7 from the score
# files, for `snakemake --report report.html` too (captions: workflow/report/*.rst).
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
        latex="results/tables/summary.tex",
        html=report(
            "results/tables/summary.html",
            caption="../report/tables.rst",
            category="Tables",
            subcategory="Results",
        ),
        per_scene=report(
            "results/tables/per_scene.csv",
            caption="../report/runs.rst",
            category="Runs",
        ),
        statistics="results/tables/statistics.csv",
        friedman="results/tables/friedman.csv",
        statistics_md="results/tables/statistics.md",
        statistics_html=report(
            "results/tables/statistics.html",
            caption="../report/statistics.rst",
            category="Tables",
            subcategory="Statistics",
        ),
        cost="results/tables/cost.csv",
        cost_md="results/tables/cost.md",
        cost_tex="results/tables/cost.tex",
        cost_html=report(
            "results/tables/cost.html",
            caption="../report/cost.rst",
            category="Cost",
        ),
        published="results/tables/published.csv",
        published_md="results/tables/published.md",
        published_tex="results/tables/published.tex",
        published_html=report(
            "results/tables/published.html",
            caption="../report/published.rst",
            category="Tables",
            subcategory="Published vs measured",
        ),
    log:
        "results/logs/report/tables.log",
    benchmark:
        "results/benchmarks/report_tables.tsv"
    conda:
        "../envs/hmifbench.yaml"
    params:
        listing="results/tables/scores/all.txt",
        seed=config["seed"],
        published=published_args,
    shell:
        "cat {input:q} > {params.listing:q} && "
        "hmifbench report --scores-from {params.listing:q} -o \"$(dirname {output.summary:q})\" "
        "--seed {params.seed} {params.published:q} > {log:q} 2>&1"


rule report_figures:
    input:
        expand("results/tables/scores/{dataset}.txt", dataset=config["datasets"]),
    output:
        report(
            directory("results/figures"),
            patterns=["fig{number,[0-9]}_{kind,[a-z]+}_{section}.png"],
            caption="../report/figures.rst",
            category="Figures",
            subcategory="{number}. {kind}",
            labels={"dataset, degradation, scene": "{section}"},
        ),
    log:
        "results/logs/report/figures.log",
    benchmark:
        "results/benchmarks/report_figures.tsv"
    conda:
        "../envs/hmifbench.yaml"
    params:
        listing="results/tables/scores/figures.txt",
        scenes=report_scene_args,
    shell:
        "cat {input:q} > {params.listing:q} && "
        "hmifbench figures --scores-from {params.listing:q} -o {output:q} {params.scenes:q} > {log:q} 2>&1"


# Per robustness sweep (docs/robustness.md): metric against the swept value with bootstrap
# bands, base/worst/slope tables and the blind runs' PSF/SRF estimation errors.
rule report_sweeps:
    input:
        expand("results/tables/scores/{dataset}.txt", dataset=config["datasets"]),
    output:
        report(
            directory("results/sweeps"),
            patterns=["{sweep,[A-Za-z0-9-]+}_{kind,figure|estimation|table}_{dataset}.{ext,png|html}"],
            caption="../report/sweeps.rst",
            category="Sweeps",
            subcategory="{sweep}",
            labels={"what": "{kind}", "dataset": "{dataset}"},
        ),
    log:
        "results/logs/report/sweeps.log",
    benchmark:
        "results/benchmarks/report_sweeps.tsv"
    conda:
        "../envs/hmifbench.yaml"
    params:
        listing="results/tables/scores/sweeps.txt",
        sweeps=lambda wc: [json.dumps(config["sweeps"], sort_keys=True)],  # a list: :q quotes it
        seed=config["seed"],
    shell:
        "cat {input:q} > {params.listing:q} && "
        "hmifbench sweeps --scores-from {params.listing:q} --sweeps {params.sweeps:q} "
        "-o {output:q} --seed {params.seed} > {log:q} 2>&1"
