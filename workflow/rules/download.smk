# One download rule per configured dataset that comes from the internet. They run on the
# submit host (localrules): cluster compute nodes often have no internet access.
# Gated datasets fail with a message saying which files to place where.


def download_flags():
    flags = [f"--accept-terms={name}" for name in config["accept_terms"]]
    if config["download_base_url"]:
        flags.append(f"--base-url={config['download_base_url']}")
    return flags  # a list: {params.flags:q} quotes each


def _download_rule(dataset):
    # A checkpoint when the scene list is read from the downloaded files: the DAG below it
    # is completed once the files are there (a dry run before the download stops here).
    return get_dataset(dataset).splits_from_files


for _dataset in config["datasets"]:
    if get_dataset(_dataset).downloadable and _download_rule(_dataset):

        checkpoint:
            name:
                f"download_{_dataset}"
            output:
                f"{DATA_ROOT}/{_dataset}/manifest.json",
            localrule: True
            log:
                f"results/logs/download/{_dataset}.log",
            conda:
                "../envs/hmifbench.yaml"
            params:
                name=_dataset,
                root=DATA_ROOT,
                flags=download_flags(),
            shell:
                "hmifbench download {params.name:q} --root {params.root:q} {params.flags:q} "
                "--no-progress > {log:q} 2>&1"

    elif get_dataset(_dataset).downloadable:

        rule:
            name:
                f"download_{_dataset}"
            output:
                f"{DATA_ROOT}/{_dataset}/manifest.json",
            localrule: True
            log:
                f"results/logs/download/{_dataset}.log",
            conda:
                "../envs/hmifbench.yaml"
            params:
                name=_dataset,
                root=DATA_ROOT,
                flags=download_flags(),
            shell:
                "hmifbench download {params.name:q} --root {params.root:q} {params.flags:q} "
                "--no-progress > {log:q} 2>&1"



# Every release of weights that a method entry names (params {weights NAME}) is downloaded
# by a job of its own, before the fuse jobs that read it.
for _weights in RELEASED_WEIGHTS:

    rule:
        name:
            f"download_weights_{_weights.replace('-', '_')}"
        output:
            weights_file(_weights),
        localrule: True
        log:
            f"results/logs/download/weights-{_weights}.log",
        conda:
            "../envs/hmifbench.yaml"
        params:
            name=_weights,
            root=MODELS_ROOT,
            flags=download_flags(),
        shell:
            "hmifbench download --model {params.name:q} --root {params.root:q} {params.flags:q} "
            "--no-progress > {log:q} 2>&1"
