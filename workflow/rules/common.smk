# Shared helpers: config validation, the job lists, and method metadata.
# Method metadata is read from the registry, which imports only light method modules
# (no torch), so building the DAG stays fast.
import json
import os

from hmifbench import registry, weights
from hmifbench.config import sweep_entries, sweep_points, validate_config
from hmifbench.datasets import get_dataset
from hmifbench.provenance import config_hash
from hmifbench.site import load_site

validate_config(config)

CONFIG_HASH = config_hash(config)
# Fuse jobs record the hash for provenance only; it reaches them through the environment
# (also inside cluster jobs, which re-read this file) rather than as a rule param, because a
# param would rerun every fuse job whenever any part of the config changes.
os.environ["HMIFBENCH_CONFIG_HASH"] = CONFIG_HASH
# Filled in by retries_left() once Snakemake knows --retries (it does not yet while this file
# is read); cluster jobs inherit the submitting process's value.
os.environ.setdefault("HMIFBENCH_RETRIES", "")


# Released weights named in method params are looked up under the config's models root.
os.environ[weights.MODELS_ROOT_ENV] = config["models_root"]


envvars:
    "HMIFBENCH_CONFIG_HASH",
    "HMIFBENCH_RETRIES",
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


SWEEP_PROTOCOLS = sweep_points(config)


def sweep_args(degradation):
    """The simulate rule's ``--sweeps`` option for a sweep's protocol (none for a named one)."""
    if degradation not in SWEEP_PROTOCOLS:
        return []
    return [f"--sweeps={json.dumps(config['sweeps'], sort_keys=True)}"]


def degradations(dataset):
    return config["datasets"][dataset].get("degradations") or config["degradations"]


# Every value from the config reaches a shell command as a list param formatted with
# {params.x:q}, which quotes each element: a path with a space or a ';' stays one argument.
def dataset_options(dataset, real=False):
    spec = config["datasets"][dataset]
    options = spec["real_pairs"]["options"] if real else spec["options"]
    return [f"--option={k}={json.dumps(v)}" for k, v in options.items()]


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
        return args  # a list: the rules format it with {params.args:q}

    def mem(self, wildcards, attempt):
        # A retried job (cluster OOM kill) gets more memory each attempt.
        return self.mem_mb * attempt


ENTRIES = {name: Entry(name, spec) for name, spec in config["methods"].items()}


# At most one GPU per job group, unless --resources gpu=N says otherwise (the local profile).
# Without a cap Snakemake adds up the GPUs of a group's jobs that could run side by side:
# a batch of GPU jobs would ask SLURM for one GPU per scene, and inside the cluster job
# (where the submitting run's --resources is not passed on) the job step would ask srun for
# more GPUs than the job holds. 'gpu' is scoped per job (Snakefile), so on a cluster this
# caps one group, not the number of GPU jobs queued.
if "gpu" not in workflow.global_resources:
    workflow.register_resource("gpu", 1)


def retries_left(wildcards, attempt):
    """Retries the scheduler still has for a job at ``attempt`` (a resource function).

    A fuse job whose method is killed (out of memory) fails while one is left, so that it is
    retried with more memory, and records the death on its last attempt (fuse.smk). Cluster
    jobs run with --retries 0 (the submitting process retries them), so the submitting
    process's count travels in the environment, which the jobs it starts inherit; where it
    does not arrive, no retry is assumed and the death is recorded at once.
    """
    total = os.environ["HMIFBENCH_RETRIES"]
    if not total:
        total = str(workflow.execution_settings.retries if workflow.execution_settings else 0)
        os.environ["HMIFBENCH_RETRIES"] = total
    return max(0, int(total) + 1 - attempt)


# Cluster site settings (site.yaml beside the Snakefile, or $HMIFBENCH_SITE; see
# slurm/site.example.yaml). Profiles are static YAML, so the workflow reads the file and hands
# each rule its account, partition, QoS and GPU type as SLURM plugin resources.
SITE = load_site(repo=workflow.basedir)
SITE_KEYS = sorted(set(SITE.slurm_resources(False)) | set(SITE.slurm_resources(True)))


def site_resources(gpu):
    """Site resource keywords; ``gpu`` is a bool or a function of the wildcards.

    With a function, the evaluate and score_batch jobs follow their entry into its CPU or GPU
    group, since all jobs of a group must agree on these strings. None leaves a key unset.
    """
    wants_gpu = gpu if callable(gpu) else (lambda wc: gpu)
    return {
        key: (lambda wc, key=key: SITE.slurm_resources(bool(wants_gpu(wc))).get(key))
        for key in SITE_KEYS
    }


def entry_gpu(wildcards):
    return ENTRIES[wildcards.entry].gpu


def weights_file(name):
    return str(weights.get_spec(name).path(MODELS_ROOT))


RELEASED_WEIGHTS = sorted({e.weights for e in ENTRIES.values() if e.weights})


def fuse_group(entry):
    """The cluster job group of an entry's fuse and evaluate jobs.

    GPU entries and CPU entries never share a group, so a CPU group never asks for a GPU;
    ``score_batch`` holds one entry × dataset × degradation together as one submitted job.
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
    return [f"results/scores/{entry}/{dataset}/{track}.batch" for track in tracks
            for entry in (ENTRIES if track == "real" else sweep_entries(config, track))]


def dataset_score_files(wildcards):
    dataset = wildcards.dataset
    simulated = [
        f"results/scores/{entry}/{dataset}/{degradation}/{scene}.json"
        for degradation in degradations(dataset)
        for entry in sweep_entries(config, degradation)  # every entry, or a sweep's 'methods'
        for scene in test_scenes(dataset)
    ]
    real = [
        f"results/scores/{entry}/{dataset}/real/{scene}.json"
        for entry in ENTRIES
        for scene in real_pair_scenes(dataset)
    ]
    return simulated + real


def report_scene_args(wildcards):
    """--scene options of `hmifbench figures` from the config's report.scenes."""
    scenes = config.get("report", {}).get("scenes") or []
    return [f"--scene={scene}" for scene in scenes]  # a list: {params.scenes:q} quotes each


def published_args(wildcards):
    """--published options of `hmifbench report` from the config's report.published."""
    folders = config.get("report", {}).get("published") or []
    return [f"--published={folder}" for folder in folders]  # a list: :q quotes each
