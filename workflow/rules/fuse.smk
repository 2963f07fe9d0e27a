# One train rule (when needed) and one fuse rule per configured method entry.
# Resources come from the method's declaration, overridable per entry in the config;
# deep methods ask for gpu=1, which the SLURM executor turns into a GPU request.


def pair_dir(wildcards):
    return f"results/pairs/{wildcards.dataset}/{wildcards.degradation}/{wildcards.scene}"


def train_pairs(wildcards):
    return [
        f"results/pairs/{wildcards.dataset}/{wildcards.degradation}/{scene}/truth.json"
        for scene in train_scenes(wildcards.dataset)
    ]


for _entry in ENTRIES.values():
    if _entry.trains:

        rule:
            name:
                f"train_{_entry.rule}"
            input:
                train_pairs,
            output:
                f"results/models/{_entry.name}/{{dataset}}/{{degradation}}/state.json",
            log:
                f"results/logs/train/{_entry.name}/{{dataset}}/{{degradation}}.log",
            conda:
                "../envs/hmifbench.yaml"
            threads: _entry.threads
            resources:
                gpu=_entry.gpu,
                mem_mb=_entry.mem,
                runtime=_entry.train_runtime,
                **site_resources(_entry.gpu > 0),
            params:
                method=_entry.method,
                args=_entry.cli_args(),
                pairs=lambda wc, input: [str(p).rsplit("/", 1)[0] for p in input],
            shell:
                "hmifbench train {params.method:q} --pairs {params.pairs:q} -o \"$(dirname {output:q})\" "
                "{params.args:q} > {log:q} 2>&1"

    rule:
        name:
            f"fuse_{_entry.rule}"
        input:
            truth="results/pairs/{dataset}/{degradation}/{scene}/truth.json",
            state=(
                f"results/models/{_entry.name}/{{dataset}}/{{degradation}}/state.json"
                if _entry.trains
                else []
            ),
            weights=weights_file(_entry.weights) if _entry.weights else [],
        output:
            f"results/fused/{_entry.name}/{{dataset}}/{{degradation}}/{{scene}}/run.json",
        log:
            f"results/logs/fuse/{_entry.name}/{{dataset}}/{{degradation}}/{{scene}}.log",
        conda:
            "../envs/hmifbench.yaml"
        group:
            fuse_group(_entry.name)
        threads: _entry.threads
        resources:
            gpu=_entry.gpu,
            mem_mb=_entry.mem,
            runtime=_entry.runtime,
            # for --retries-left (a resource, not a param: params are rerun triggers)
            retries_left=retries_left,
            **site_resources(_entry.gpu > 0),
        params:
            method=_entry.method,
            args=_entry.cli_args(),
            state=lambda wc, input: ["--state", str(input.state).rsplit("/", 1)[0]] if input.state else [],
        shell:
            "hmifbench fuse {params.method:q} \"$(dirname {input.truth:q})\" -o \"$(dirname {output:q})\" "
            "{params.state:q} {params.args:q} --on-error=record \"--config-hash=$HMIFBENCH_CONFIG_HASH\" "
            "--retries-left={resources.retries_left:q} > {log:q} 2>&1"
