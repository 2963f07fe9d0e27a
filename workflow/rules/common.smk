# Shared helpers: config validation, the job lists, and method metadata.
# Method metadata is read from the registry, which imports only light method modules
# (no torch), so building the DAG stays fast.
import json
import os
import shlex

from hmifbench import registry, weights
from hmifbench.config import validate_config
from hmifbench.datasets import get_dataset
from hmifbench.provenance import config_hash

validate_config(config)

CONFIG_HASH = config_hash(config)
# Fuse jobs record the hash for provenance only; it reaches them through the environment
# (also inside cluster jobs, which re-read this file) rather than as a rule param, because a
# param would rerun every fuse job whenever any part of the config changes.
os.environ["HMIFBENCH_CONFIG_HASH"] = CONFIG_HASH


# Released weights named in method params are looked up under the config's models root.
os.environ[weights.MODELS_ROOT_ENV] = config["models_root"]


envvars:
    "HMIFBENCH_CONFIG_HASH",
    weights.MODELS_ROOT_ENV,


DATA_ROOT = config["data_root"]
MODELS_ROOT = config["models_root"]


wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    degradation=r"[A-Za-z0-9_.-]+",
    scene=r"[A-Za-z0-9_.-]+",


def _listed_scenes(dataset, split):
    ds = get_dataset(dataset)
    if ds.splits_from_files:
        # Wait for the download checkpoint; raises "incomplete" until the files are there.
        getattr(checkpoints, f"download_{dataset}").get()
    return ds.scenes(split, root=f"{DATA_ROOT}/{dataset}")


def metric_profiles():
    """The main profile first, then the extra ones (each once)."""
    metrics = config["metrics"]
    return list(dict.fromkeys([metrics["profile"], *metrics["extra_profiles"]]))


def test_scenes(dataset):
    spec = config["datasets"][dataset]
    return spec.get("scenes") or _listed_scenes(dataset, spec.get("split", "test"))


def train_scenes(dataset):
    spec = config["datasets"][dataset]
    return spec.get("train_scenes") or _listed_scenes(dataset, spec["train_split"])


def degradations(dataset):
    return config["datasets"][dataset].get("degradations") or config["degradations"]


def dataset_options(dataset, real=False):
    spec = config["datasets"][dataset]
    options = spec["real_pairs"]["options"] if real else spec["options"]
    return " ".join(shlex.quote(f"--option={k}={json.dumps(v)}") for k, v in options.items())


def download_input(wildcards):
    if get_dataset(wildcards.dataset).downloadable:
        return f"{DATA_ROOT}/{wildcards.dataset}/manifest.json"
    return []


class Entry:
    """One configured method entry: a registered method with parameter overrides."""

    def __init__(self, name, spec):
        self.name = name
        self.method = spec["method"]
        self.params = spec.get("params", {})
        self.cls = registry.get_class(self.method)
        self.setting = spec.get("setting", config["setting"])
        self.rule = name.replace("-", "_")
        self.trains = self.cls.trains_on_dataset(self.cls.make_params(**self.params))
        # A registered release in params.weights is downloaded by its own rule (download.smk).
        ref = self.params.get("weights")
        self.weights = ref if isinstance(ref, str) and ref in weights.registry() else None
        res = self.cls.resources
        over = spec.get("resources", {})
        self.gpu = over.get("gpu", res.gpu)
        self.mem_mb = over.get("mem_mb", res.mem_mb)
        self.runtime = over.get("runtime", res.runtime_min)
        self.train_runtime = over.get("train_runtime", res.train_runtime)
        self.threads = over.get("threads", res.threads)

    def cli_args(self):
        args = [f"--entry={self.name}", f"--setting={self.setting}", f"--seed={config['seed']}",
                f"--params={json.dumps(self.params, sort_keys=True)}"]
        args += [f"--plugins={p}" for p in config["plugins"]]
        if config["allow_cpu_fallback"]:
            args.append("--allow-cpu-fallback")
        return " ".join(shlex.quote(a) for a in args)

    def mem(self, wildcards, attempt):
        # A retried job (cluster OOM kill) gets more memory each attempt.
        return self.mem_mb * attempt


ENTRIES = {name: Entry(name, spec) for name, spec in config["methods"].items()}


# At most one GPU per job group, unless --resources gpu=N says otherwise (profiles/local).
# Without a cap Snakemake adds up the GPUs of a group's jobs that could run side by side:
# a batch of GPU jobs would ask SLURM for one GPU per scene, and inside the cluster job
# (where the submitting run's --resources is not passed on) the job step would ask srun for
# more GPUs than the job holds. 'gpu' is scoped per job (Snakefile), so on a cluster this
# caps one group, not the number of GPU jobs queued.
if "gpu" not in workflow.global_resources:
    workflow.register_resource("gpu", 1)


def weights_file(name):
    return str(weights.get_spec(name).path(MODELS_ROOT))


RELEASED_WEIGHTS = sorted({e.weights for e in ENTRIES.values() if e.weights})


def fuse_group(entry):
    """The cluster job group of an entry's fuse and evaluate jobs.

    GPU entries and CPU entries never share a group, so a CPU group never asks for a GPU;
    ``--group-components`` (profiles/slurm) packs several scenes into one submitted job.
    """
    return "fuse_evaluate_gpu" if ENTRIES[entry].gpu else "fuse_evaluate_cpu"


def real_pair_scenes(dataset):
    real = config["datasets"][dataset].get("real_pairs")
    if real is None:
        return []
    return real.get("scenes") or test_scenes(dataset)


def batch_score_files(wildcards):
    """Score files of one cluster batch: every scene of one entry × dataset × degradation."""
    dataset = wildcards.dataset
    scenes = real_pair_scenes(dataset) if wildcards.degradation == "real" else test_scenes(dataset)
    return [
        f"results/scores/{wildcards.entry}/{dataset}/{wildcards.degradation}/{scene}.json"
        for scene in scenes
    ]


def dataset_batch_files(wildcards):
    dataset = wildcards.dataset
    tracks = list(degradations(dataset)) + (["real"] if real_pair_scenes(dataset) else [])
    return [f"results/scores/{entry}/{dataset}/{track}.batch" for entry in ENTRIES for track in tracks]


def dataset_score_files(wildcards):
    dataset = wildcards.dataset
    simulated = [
        f"results/scores/{entry}/{dataset}/{degradation}/{scene}.json"
        for entry in ENTRIES
        for degradation in degradations(dataset)
        for scene in test_scenes(dataset)
    ]
    real = [
        f"results/scores/{entry}/{dataset}/real/{scene}.json"
        for entry in ENTRIES
        for scene in real_pair_scenes(dataset)
    ]
    return simulated + real
