"""The ``hmifbench`` command: one sub-command per pipeline stage, plus method tools.

Every Snakemake rule is one of these commands, so any step can be rerun by hand.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from pathlib import Path

from hmifbench.errors import HmifError


def _options(pairs) -> dict:
    """Parse ``key=value`` options; values are read as YAML scalars (numbers, booleans)."""
    import yaml

    out = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise HmifError(f"option {item!r} must look like key=value")
        out[key] = yaml.safe_load(value)
    return out


def _params(text) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise HmifError(f"--params must be a JSON object: {err}") from None
    if not isinstance(value, dict):
        raise HmifError("--params must be a JSON object")
    return value


def cmd_protocols(args):
    import yaml

    from hmifbench.datasets import PROTOCOLS
    from hmifbench.datasets.sweeps import expand_sweep

    if args.sweep is None:
        for name, p in PROTOCOLS.items():
            print(f"{name:<16} {p.description}")
        return 0
    path = Path(args.config or "config/config.yaml")
    try:
        sweeps = (yaml.safe_load(path.read_text()) or {}).get("sweeps") or {}
    except (OSError, yaml.YAMLError) as err:
        raise HmifError(f"{path}: cannot read the configuration ({err})") from None
    if args.sweep not in sweeps:
        raise HmifError(f"{path}: no sweep {args.sweep!r} (sweeps: {', '.join(sweeps) or 'none'})")
    for point in expand_sweep(args.sweep, sweeps[args.sweep]):
        print(f"{point.protocol.name}\t{point.field}={point.value!r}\tnominal={point.nominal.name}")
    return 0


def cmd_methods(args):
    from hmifbench import registry

    for p in args.plugins:
        registry.add_plugin_path(p)
    described = {n: registry.get_class(n).describe() for n in registry.available()}
    released = _released_weights()
    if args.json:
        print(json.dumps({"methods": described, "weights": released, "errors": registry.load_errors()},
                         indent=2, default=str))
        return 0
    print(f"{'name':<14} {'family':<7} {'training':<8} {'blind':<6} {'gpu':<4} source")
    for name, d in described.items():
        print(f"{name:<14} {d['family']:<7} {d['training']:<8} {str(d['blind']):<6} "
              f"{d['resources']['gpu']:<4} {d['class']}")
    if released:
        print("\nreleased weights (use as params: {weights: NAME}; fetch with "
              "'hmifbench download --model NAME'):")
        print(f"{'name':<20} {'method':<10} {'downloaded':<10} trained on")
        for name, w in released.items():
            print(f"{name:<20} {w['method']:<10} {'yes' if w['downloaded'] else 'no':<10} {w['trained_on']}")
    for name, err in registry.load_errors().items():
        print(f"[not loaded] {name}: {err}", file=sys.stderr)
    return 0


def _released_weights() -> dict:
    """Registered releases with their record and whether they are in the models root."""
    from hmifbench import weights

    out = {}
    for name in weights.available():
        spec = weights.get_spec(name)
        out[name] = {"method": spec.method, "title": spec.title, "trained_on": spec.trained_on,
                     "config": spec.config, "size": spec.size, "sha256": spec.sha256,
                     "url": spec.urls[0], "licence": spec.licence,
                     "path": str(spec.path()), "downloaded": weights.is_downloaded(name)}
    return out


def cmd_download(args):
    from hmifbench.datasets.download import DownloadError, cli_download

    if (args.name is None) == (args.model is None):
        raise HmifError("name one dataset (hmifbench download cave) or one release of weights "
                        "(hmifbench download --model mossfuse-cave-x32)")
    try:
        if args.model is not None:
            print(_download_model(args))
            return 0
        print(cli_download(args.name, root=args.root or "resources/datasets",
                           accept_terms=args.accept_terms or (),
                           verify_only=args.verify, base_url=args.base_url,
                           progress=not args.no_progress))
    except DownloadError as err:  # a network or integrity failure; a retry may help
        print(f"hmifbench download: error: {err}", file=sys.stderr)
        return 1
    return 0


def _download_model(args):
    from hmifbench import weights
    from hmifbench.datasets.models import download_weights

    if args.verify:
        return weights.resolve(args.model, args.root)[0]
    return download_weights(args.model, args.root, base_url=args.base_url, progress=not args.no_progress)


def cmd_prepare(args):
    from hmifbench.stages import prepare

    print(prepare(args.dataset, args.scene, args.out, root=args.root, **_options(args.option)))
    return 0


def cmd_prepare_pair(args):
    from hmifbench.stages import prepare_pair

    print(prepare_pair(args.dataset, args.scene, args.out, root=args.root, **_options(args.option)))
    return 0


def cmd_simulate(args):
    from hmifbench.stages import simulate

    sweeps = json.loads(args.sweeps) if args.sweeps else None
    print(simulate(args.scene, args.protocol, args.out, seed=args.seed, scene_id=args.scene_id,
                   sweeps=sweeps))
    return 0


def cmd_train(args):
    from hmifbench.stages import train

    print(train(args.method, args.pairs, args.out, params=_params(args.params), setting=args.setting,
                seed=args.seed, device=args.device, allow_cpu_fallback=args.allow_cpu_fallback,
                plugins=args.plugins, entry=args.entry))
    return 0


def cmd_fuse(args):
    from hmifbench.stages import fuse

    record = fuse(args.method, args.pair, args.out, params=_params(args.params), setting=args.setting,
                  seed=args.seed, device=args.device, allow_cpu_fallback=args.allow_cpu_fallback,
                  state_dir=args.state, plugins=args.plugins, entry=args.entry,
                  on_error=args.on_error, config_hash=args.config_hash,
                  on_kill="fail" if args.retries_left > 0 else "record")
    if record["status"] != "ok":
        print(f"hmifbench fuse: {record['entry']} failed on {args.pair}: {record['error']} "
              "(recorded in run.json)", file=sys.stderr)
    else:
        print(f"{record['entry']}: {record['timing']['fuse_s']:.2f} s -> {Path(args.out) / 'hr_hsi.hdr'}")
    return 0


def cmd_evaluate(args):
    from hmifbench.metrics import DEFAULT_PROFILE, check_profile
    from hmifbench.stages import evaluate

    labels = _options(args.label)
    # checked before any file is read; repeated --profile: scored under each, the first is main
    profiles = [check_profile(p) for p in (args.profile or [DEFAULT_PROFILE])]
    record = evaluate(args.run, args.reference, args.pair, args.out,
                      profile=profiles[0] if len(profiles) == 1 else profiles,
                      crop=args.crop, data_range=args.data_range, labels=labels)
    print(json.dumps({"status": record["status"], "profile": record["profile"], **record["scores"]},
                     default=str))
    return 0


def _score_paths(args) -> list[str]:
    scores = list(args.scores)
    for listing in args.scores_from or []:
        try:
            text = Path(listing).read_text()
        except OSError as err:
            raise HmifError(f"--scores-from {listing}: {err.strerror}") from None
        scores += [ln for ln in text.splitlines() if ln.strip()]
    if not scores:
        raise HmifError("no score files given (as arguments or listed in --scores-from): "
                        "nothing to tabulate, no table written")
    return scores


def cmd_report(args):
    from hmifbench.report import write_report

    paths = write_report(_score_paths(args), args.out, published_dirs=args.published,
                         seed=args.seed, n_resamples=args.bootstrap)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def cmd_figures(args):
    from hmifbench.report import write_figures

    written = write_figures(_score_paths(args), args.out, scenes=args.scene,
                            formats=tuple(args.formats.split(",")))
    for name, paths in written.items():
        print(f"{name}: {', '.join(str(p) for p in paths)}")
    return 0


def cmd_sweeps(args):
    from hmifbench.report.sweeps import write_sweeps

    if args.config:
        from hmifbench.config import load_config

        sweeps = load_config(args.config).get("sweeps") or {}
    else:
        try:
            sweeps = json.loads(args.sweeps or "{}")
        except json.JSONDecodeError as err:
            raise HmifError(f"--sweeps: not JSON ({err})") from None
    if not sweeps:
        raise HmifError("no sweeps given (--sweeps JSON or --config with a 'sweeps' section)")
    written = write_sweeps(_score_paths(args), sweeps, args.out, seed=args.seed,
                           n_resamples=args.bootstrap, formats=tuple(args.formats.split(",")))
    for name, paths in written.items():
        print(f"{name}: {', '.join(str(p) for p in paths)}")
    return 0


def cmd_new_method(args):
    from hmifbench.scaffold import new_method

    print(new_method(args.name, args.dir, deep=args.deep, force=args.force).instructions())
    return 0


def cmd_profile_install(args):
    from hmifbench.profiles import install_profile

    done = install_profile(args.name, force=args.force)
    if done["backup"]:
        print(f"moved the previous profile to {done['backup']}")
    print(f"{done['action']}: {done['path']}")
    print(f"`snakemake --profile {args.name}` now finds it from any folder")
    return 0


def cmd_plan(args):
    import os

    from hmifbench import plan, site

    if args.site:  # the workflow's dry run must read the same file
        os.environ[site.ENV_VAR] = str(Path(args.site).resolve())
    result = plan.make_plan(args.configfile, workdir=args.directory, cores=args.cores,
                            site=site.load_site(args.site), records=args.records or None)
    print(json.dumps(result, indent=1, default=str) if args.json else plan.format_plan(result))
    return 0


def cmd_check_method(args):
    from hmifbench.conformance import run_checks

    report = run_checks(args.name, _params(args.params), quick=not args.full, plugins=args.plugins,
                        skip=args.skip, device=args.device)
    print(report.format())
    return 0 if report.ok else 1


def _common_run_args(p):
    p.add_argument("--params", help="method parameters as a JSON object, overriding defaults")
    p.add_argument("--setting", choices=["known", "nominal", "blind"], default="known",
                   help="known: the method gets the true PSF and SRF; blind: it gets neither")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--allow-cpu-fallback", action="store_true",
                   help="run a GPU method on the CPU when no GPU is visible instead of failing")
    p.add_argument("--plugins", action="append", default=[], metavar="DIR",
                   help="a plugin folder of method files (repeatable)")
    p.add_argument("--entry", help="the config entry name (a method with its parameters)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hmifbench", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("methods", help="list the registered fusion methods")
    p.add_argument("--plugins", action="append", default=[], metavar="DIR")
    p.add_argument("--json", action="store_true", help="full metadata as JSON")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("download", help="fetch and verify a dataset or released weights "
                                         "(or check placed ones)")
    p.add_argument("name", nargs="?", help="dataset name, e.g. cave")
    p.add_argument("--model", metavar="WEIGHTS",
                   help="released weights instead of a dataset, e.g. mossfuse-cave-x32 "
                        "(listed by 'hmifbench methods')")
    p.add_argument("--root", help="datasets folder (default resources/datasets), or with --model "
                                  "the models folder (default $HMIFBENCH_MODELS or resources/models)")
    p.add_argument("--accept-terms", action="append", metavar="NAME",
                   help="accept the terms of use of dataset NAME (gate 'terms'; repeatable)")
    p.add_argument("--verify", action="store_true", help="only check files already in place")
    p.add_argument("--base-url", help="fetch every file from this base URL instead of its mirrors")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("prepare", help="write one ground-truth scene as an ENVI cube")
    p.add_argument("dataset")
    p.add_argument("scene")
    p.add_argument("-o", "--out", required=True, help="output .hdr path")
    p.add_argument("--root", default="resources/datasets", help="where downloaded datasets live")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="dataset option (repeatable)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("prepare-pair", help="write a real (LR-HSI, HR-MSI) pair (no ground truth)")
    p.add_argument("dataset")
    p.add_argument("scene")
    p.add_argument("-o", "--out", required=True, help="output pair folder")
    p.add_argument("--root", default="resources/datasets", help="where downloaded datasets live")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="reader option (repeatable)")
    p.set_defaults(func=cmd_prepare_pair)

    p = sub.add_parser("simulate", help="degrade a scene into an (LR-HSI, HR-MSI) pair")
    p.add_argument("scene", help="ground-truth .hdr")
    p.add_argument("protocol", help="degradation protocol name, e.g. gauss-fwhm-x8")
    p.add_argument("-o", "--out", required=True, help="output pair folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scene-id", help="name that seeds the noise (default: the file stem)")
    p.add_argument("--sweeps", help="the config's sweeps section as JSON, when PROTOCOL is one of a sweep's")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("protocols", help="list the degradation protocols, or expand a config's sweep")
    p.add_argument("--config", help="config file whose sweeps to read (default config/config.yaml)")
    p.add_argument("--sweep", help="print the protocols this sweep of the config expands into")
    p.set_defaults(func=cmd_protocols)

    p = sub.add_parser("train", help="fit a dataset-trained method on train pairs")
    p.add_argument("method")
    p.add_argument("--pairs", nargs="+", required=True, help="pair folders of the train split")
    p.add_argument("-o", "--out", required=True, help="model folder (state.json, checkpoints)")
    _common_run_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("fuse", help="run a method on one pair")
    p.add_argument("method")
    p.add_argument("pair", help="pair folder (lr_hsi.hdr, hr_msi.hdr, truth.json)")
    p.add_argument("-o", "--out", required=True, help="output folder (hr_hsi.hdr, run.json)")
    p.add_argument("--state", help="model folder written by 'hmifbench train'")
    p.add_argument("--on-error", choices=["raise", "record"], default="raise",
                   help="record: write a failed run.json and exit 0 (used by the workflow)")
    p.add_argument("--config-hash", help="hash of the workflow config, for provenance")
    p.add_argument("--retries-left", type=int, default=0, metavar="N",
                   help="retries the scheduler has left for this job (the workflow passes it): while "
                        "N > 0, a method killed by a signal (out of memory, a crash) fails the command "
                        "so that the job is retried; at 0 the death is recorded in run.json")
    _common_run_args(p)
    p.set_defaults(func=cmd_fuse)

    p = sub.add_parser("evaluate", help="score one fuse output")
    p.add_argument("run", help="run.json of the fuse output")
    p.add_argument("--reference", help="ground-truth .hdr; leave out for a real pair "
                                        "(no-reference scores: D_lambda, D_s, QNR)")
    p.add_argument("--pair", required=True, help="pair folder (for the truth)")
    p.add_argument("-o", "--out", required=True, help="score .json")
    p.add_argument("--profile", action="append", metavar="PROFILE",
                   help="metric profile, one of hmifbench.metrics.PROFILES (default: its "
                        "DEFAULT_PROFILE, canonical); repeat to score under several, the first "
                        "being the record's main 'scores'")
    p.add_argument("--crop", type=int, default=0, help="border pixels excluded from scoring")
    p.add_argument("--data-range", type=float, default=1.0)
    p.add_argument("--label", action="append", metavar="KEY=VALUE",
                   help="labels stored with the scores (dataset, degradation, scene)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("report", help="tables from score files: results, statistics, cost, "
                                      "published vs measured")
    p.add_argument("scores", nargs="*")
    p.add_argument("--scores-from", action="append", metavar="FILE",
                   help="a file listing score paths, one per line (repeatable)")
    p.add_argument("-o", "--out", required=True, help="table folder")
    p.add_argument("--published", action="append", default=[], metavar="DIR",
                   help="a folder of published-results YAML files, besides the packaged ones "
                        "(repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    p.add_argument("--bootstrap", type=int, default=2000, metavar="N",
                   help="bootstrap resamples of each confidence interval")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("figures", help="figures 1-7 from score files (and the runs they point to)")
    p.add_argument("scores", nargs="*")
    p.add_argument("--scores-from", action="append", metavar="FILE",
                   help="a file listing score paths, one per line (repeatable)")
    p.add_argument("-o", "--out", required=True, help="figure folder")
    p.add_argument("--scene", action="append", metavar="DATASET/SCENE",
                   help="scene of figures 1, 2, 5 and 6 (repeatable; default: the first scene "
                        "of each dataset)")
    p.add_argument("--formats", default="png,pdf", help="comma-separated file formats")
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("sweeps", help="per robustness sweep: metric-vs-value figures with "
                                      "bootstrap bands, base/worst/slope tables, blind runs' "
                                      "estimation errors (docs/robustness.md)")
    p.add_argument("scores", nargs="*")
    p.add_argument("--scores-from", action="append", metavar="FILE",
                   help="a file listing score paths, one per line (repeatable)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--sweeps", help="the config's sweeps section as JSON")
    p.add_argument("--config", help="a config file whose sweeps to read (instead of --sweeps)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    p.add_argument("--bootstrap", type=int, default=2000, metavar="N",
                   help="bootstrap resamples of each band")
    p.add_argument("--formats", default="png,pdf", help="comma-separated figure formats")
    p.set_defaults(func=cmd_sweeps)

    p = sub.add_parser("new-method", help="write a ready-to-edit method plugin (module + test)")
    p.add_argument("name", help="method name, a lower-case identifier (e.g. my_fusion)")
    p.add_argument("--dir", default="plugins", metavar="PLUGIN_DIR",
                   help="plugin folder to write into (default: ./plugins)")
    p.add_argument("--deep", action="store_true",
                   help="start from a small torch network instead of a linear method")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=cmd_new_method)

    p = sub.add_parser("profile", help="install a Snakemake profile (slurm, local) for this user")
    psub = p.add_subparsers(dest="action", required=True)
    q = psub.add_parser("install", help="copy the profile into Snakemake's user config folder, "
                                        "so `--profile NAME` works from any folder")
    q.add_argument("name", nargs="?", default="slurm", choices=["slurm", "local"])
    q.add_argument("--force", action="store_true",
                   help="replace a different profile of that name (kept as NAME.backup)")
    q.set_defaults(func=cmd_profile_install)

    p = sub.add_parser("plan", help="what a cluster run submits and costs, before it starts")
    p.add_argument("--configfile", default="config/config.yaml", help="the workflow config")
    p.add_argument("--cores", type=int, default=8, help="--cores of the run (default 8)")
    p.add_argument("--directory", default=".", help="the run's working folder (default: here)")
    p.add_argument("--site", help="site file (default: $HMIFBENCH_SITE or site.yaml)")
    p.add_argument("--records", action="append", metavar="RESULTS_DIR",
                   help="results folder of earlier runs to take timings from (repeatable; "
                        "default: results/ of the working folder)")
    p.add_argument("--json", action="store_true", help="the whole plan as JSON")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("check-method", help="run the conformance checks on a method")
    p.add_argument("name", help="registered method name")
    p.add_argument("--plugins", action="append", default=[], metavar="DIR",
                   help="a plugin folder of method files (repeatable)")
    p.add_argument("--params", help="parameter overrides as a JSON object, e.g. '{\"iterations\": 2}'")
    p.add_argument("--quick", dest="full", action="store_false", default=False,
                   help="tiny problems and the method's quick_params() (default)")
    p.add_argument("--full", action="store_true",
                   help="the method's default parameters and a 64x64, 31-band problem")
    p.add_argument("--skip", action="append", default=[], metavar="CHECK",
                   help="leave out a check (repeatable), e.g. --skip import")
    p.add_argument("--device", default="cpu", help="device passed to fit/fuse (default cpu)")
    p.set_defaults(func=cmd_check_method)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HmifError as err:
        print(f"hmifbench {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        # A file-system failure (disk full, permission, a file where a folder should be): one
        # line naming the file, not a traceback.
        where = f": {err.filename}" if err.filename else ""
        hint = " (the disk or quota is full)" if err.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        print(f"hmifbench {args.command}: error: {err.strerror or err}{where}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
