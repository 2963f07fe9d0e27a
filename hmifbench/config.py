"""Loading and validating the workflow configuration.

The JSON schema (``hmifbench/schemas/config.schema.yaml``, shipped with the package; the
workflow validates with it through :func:`validate_config`) checks structure and fills in
defaults. Names that live in code tables are put into the schema when it is loaded (the metric
profiles of :data:`hmifbench.metrics.PROFILES` and their default), so there is one list of each.
:func:`validate_config` then checks meaning: that every dataset, degradation protocol and method
exists and that every method's parameters and every dataset's options are valid. All of it
happens when the config is loaded, before any job runs; errors name the offending key.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from hmifbench.errors import ConfigError, HmifError

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"


def load_schema(schema_path=SCHEMA_PATH) -> dict:
    """The config schema, with the metric profiles' names and default filled in."""
    from hmifbench.metrics import DEFAULT_PROFILE, PROFILES

    schema = yaml.safe_load(Path(schema_path).read_text())
    profile = schema["properties"]["metrics"]["properties"]["profile"]
    profile.update(enum=list(PROFILES), default=DEFAULT_PROFILE)
    schema["properties"]["metrics"]["properties"]["extra_profiles"]["items"]["enum"] = list(PROFILES)
    return schema


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _schema_errors(config: dict, schema: dict) -> list[str]:
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_cls(schema).iter_errors(config), key=lambda e: list(e.path))
    out = []
    for e in errors:
        if e.validator == "additionalProperties":
            extra = sorted(set(e.instance) - set(e.schema.get("properties", {})))
            out.append(f"config key {_key(list(e.path) + extra[:1])}: unknown key "
                       f"(allowed: {', '.join(sorted(e.schema.get('properties', {})))})")
        else:
            out.append(f"config key {_key(e.path)}: {e.message}")
    return out


def _fill_defaults(config: dict, schema: dict) -> None:
    """Insert schema defaults (recursively, including per-entry defaults of maps)."""
    for key, sub in schema.get("properties", {}).items():
        if key not in config and "default" in sub:
            config[key] = yaml.safe_load(yaml.safe_dump(sub["default"]))
        if isinstance(config.get(key), dict):
            _fill_defaults(config[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in config.items():
            if key in schema.get("properties", {}):
                continue
            if value is None and "object" in (extra.get("type") or []):
                config[key] = value = {}
            if isinstance(value, dict):
                _fill_defaults(value, extra)


def validate_config(config: dict, schema_path=SCHEMA_PATH) -> dict:
    """Validate ``config`` in place, fill defaults, resolve method entries; return it.

    Raises
    ------
    ConfigError
        Naming every bad key at once.
    """
    schema = load_schema(schema_path)
    errors = _schema_errors(config, schema)
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
    _fill_defaults(config, schema)
    errors = _sweep_errors(config) or _semantic_errors(config)
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
    return config


def _dataset_errors(name: str, spec: dict, config: dict) -> list[tuple[str, str]]:
    """(key suffix, message) for each problem of one dataset entry."""
    from hmifbench.datasets import PROTOCOLS, get_dataset

    try:
        dataset = get_dataset(name)
    except HmifError as err:
        return [("", str(err))]
    errors = []
    root = Path(config["data_root"]) / name
    # Scene lists read from the files can only be checked once the files are there.
    if "scenes" not in spec and ((root / "manifest.json").exists() or not dataset.splits_from_files):
        try:
            dataset.scenes(spec.get("split", "test"), root=root)
        except HmifError as err:
            errors.append(("", str(err)))
    if "real_pairs" in spec and not hasattr(dataset, "pair"):
        errors.append((".real_pairs", f"dataset {name!r} has no real pairs"))
    swept = set(sweep_points(config))
    for protocol in spec.get("degradations", []):
        if protocol not in PROTOCOLS and protocol not in swept:
            errors.append((".degradations", f"unknown protocol {protocol!r} "
                                            f"(known: {', '.join(sorted(PROTOCOLS))})"))
    return errors


def _sweep_errors(config: dict) -> list[str]:
    """Expand ``sweeps`` and add their protocols (once) to the global ``degradations`` and to
    the own ``degradations`` list of every dataset that lists the sweep's base protocol."""
    from hmifbench.datasets.sweeps import expand_sweeps

    try:
        points = expand_sweeps(config["sweeps"])
    except ConfigError as err:
        return [str(err)]
    errors = [f"config key sweeps.{name}.methods: unknown method entry {entry!r} "
              f"(entries: {', '.join(config['methods'])})"
              for name, spec in config["sweeps"].items() for entry in spec.get("methods") or []
              if entry not in config["methods"]]
    config["degradations"] += [name for name in points if name not in config["degradations"]]
    for spec in config["datasets"].values():
        own = spec.get("degradations")
        if own:
            # A dataset with its own list gets a sweep when it runs the sweep's base: the sweep
            # departs from a protocol the dataset was meant to be degraded with.
            bases = set(own)
            own += [name for name, p in points.items() if p.nominal.name in bases and name not in own]
    return errors


def sweep_entries(config: dict, degradation: str) -> list[str]:
    """The method entries that run ``degradation``: a sweep's ``methods`` for one of its
    protocols, every entry otherwise (a validated config)."""
    point = sweep_points(config).get(degradation)
    chosen = (config["sweeps"][point.sweep].get("methods") if point else None) or config["methods"]
    return [entry for entry in config["methods"] if entry in chosen]


def sweep_points(config: dict) -> dict:
    """The protocols of a validated config's sweeps by name (:func:`expand_sweeps`)."""
    from hmifbench.datasets.sweeps import expand_sweeps

    return expand_sweeps(config.get("sweeps") or {})


def _semantic_errors(config: dict) -> list[str]:
    from hmifbench import registry
    from hmifbench.datasets import PROTOCOLS, config_option_errors

    known = set(PROTOCOLS) | set(sweep_points(config))
    errors = []
    for name, ds in config["datasets"].items():
        errors += [f"config key datasets.{name}{key}: {msg}" for key, msg in _dataset_errors(name, ds, config)]
    errors += config_option_errors(config["datasets"])
    for name in config["degradations"]:
        if name not in known:
            errors.append(f"config key degradations: unknown protocol {name!r} "
                          f"(known: {', '.join(sorted(PROTOCOLS))})")
    for path in config["plugins"]:
        try:
            registry.add_plugin_path(path)
        except HmifError as err:
            errors.append(f"config key plugins: {err}")
    for entry, spec in config["methods"].items():
        spec.setdefault("method", entry)
        try:
            registry.get_class(spec["method"]).make_params(**spec.get("params", {}))
        except HmifError as err:
            errors.append(f"config key methods.{entry}: {err}")
    return errors


def load_config(path) -> dict:
    """Read a YAML config file and validate it."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the configuration ({err})") from None
    try:
        return validate_config(config)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
