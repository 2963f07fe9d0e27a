"""Dataset options are declared, typed and checked when the configuration is loaded; dataset
metadata has one source (datasets/registry.yaml); built-ins are registered from one list."""

import copy
import dataclasses

import pytest

from hmifbench.cli import main
from hmifbench.config import validate_config
from hmifbench.datasets import BUILTIN_DATASETS, DATASETS, get_dataset
from hmifbench.datasets import download as dl
from hmifbench.datasets.options import declared_options
from hmifbench.errors import ConfigError, InputError

BASE = {"datasets": {"synthetic": {"scenes": ["scene01"]}}, "degradations": ["gauss-fwhm-x4"],
        "methods": {"gsa": {}}}


def _config(**datasets):
    config = copy.deepcopy(BASE)
    config["datasets"] = datasets
    return config


def test_unknown_option_fails_at_config_load_naming_the_key_and_the_allowed_ones():
    config = _config(synthetic={"scenes": ["scene01"], "options": {"colour": "red"}})
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    message = str(err.value)
    assert "config key datasets.synthetic.options.colour: unknown option" in message
    assert "allowed options: n_materials, n_objects, n_regions, seed, size" in message


@pytest.mark.parametrize("dataset, options, key, expected", [
    ("synthetic", {"size": "big"}, "datasets.synthetic.options.size", "must be an integer, got 'big'"),
    ("synthetic", {"size": 12.5}, "datasets.synthetic.options.size", "must be an integer, got 12.5"),
    ("cave", {"crop": 1024, "position": 3}, "datasets.cave.options.position", "must be a string or a list"),
    ("cave", {"crop": "big"}, "datasets.cave.options.crop", "crop must be N or RxC"),
    ("harvard", {"normalise": "median"}, "datasets.harvard.options.normalise", "normalise must be 'max'"),
    ("ncalm", {"max_nodata": 2}, "datasets.ncalm.options.max_nodata", r"must be in \[0, 1\]"),
])
def test_ill_typed_option_fails_at_config_load_naming_the_key(dataset, options, key, expected):
    spec = {"options": options} if dataset == "synthetic" else {"scenes": ["x"], "options": options}
    with pytest.raises(ConfigError, match=f"config key {key}: {expected}"):
        validate_config(_config(**{dataset: spec}))


def test_real_pair_options_are_checked_against_the_pair_reader():
    ok = {"scenes": ["r0c0"], "options": {"size": 64}, "real_pairs": {"options": {"scale": 4, "size": 64}}}
    validate_config(_config(ncalm=copy.deepcopy(ok)))
    bad = copy.deepcopy(ok)
    bad["real_pairs"]["options"]["scale"] = "four"
    with pytest.raises(ConfigError, match="datasets.ncalm.real_pairs.options.scale: must be an integer"):
        validate_config(_config(ncalm=bad))
    # scale belongs to the pair reader only
    bad = copy.deepcopy(ok)
    bad["options"]["scale"] = 4
    with pytest.raises(ConfigError, match="datasets.ncalm.options.scale: unknown option"):
        validate_config(_config(ncalm=bad))


def test_every_bad_option_is_reported_at_once():
    config = _config(synthetic={"options": {"colour": "red", "seed": "x"}})
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert "options.colour" in str(err.value) and "options.seed" in str(err.value)


def test_valid_options_are_conformed_and_defaults_filled():
    opts = get_dataset("synthetic").parse_options({"size": 32.0})
    assert opts.size == 32 and isinstance(opts.size, int) and opts.seed == 0
    opts = get_dataset("harvard").parse_options({"normalise": 1000, "crop": [4, 6]})
    assert opts.normalise == 1000.0 and opts.crop == [4, 6] and opts.position == "topleft"


def test_reader_refuses_bad_options_with_the_same_words():
    with pytest.raises(InputError, match=r"synthetic: unknown options \['colour'\] \(allowed options: "):
        get_dataset("synthetic").load("scene01", colour="red")
    with pytest.raises(InputError, match="synthetic: option 'size' must be an integer"):
        get_dataset("synthetic").load("scene01", size="big")


def test_cli_prepare_rejects_an_unknown_option(tmp_path, capsys):
    rc = main(["prepare", "synthetic", "scene01", "-o", str(tmp_path / "s.hdr"), "--option", "colour=red"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown options ['colour']" in err and "allowed options: n_materials" in err
    assert not (tmp_path / "s.hdr").exists()


def test_every_option_has_a_type_and_a_docstring():
    for dataset in DATASETS.values():
        for cls in filter(None, (dataset.Options, dataset.PairOptions)):
            assert dataclasses.is_dataclass(cls), dataset.name
            for name, field in declared_options(cls).items():
                assert field.metadata.get("doc"), f"{dataset.name}.{name} has no doc"
                assert field.type, f"{dataset.name}.{name} has no type"


def test_metadata_has_one_source_the_registry():
    reg = dl.registry()
    for dataset in DATASETS.values():
        if dataset.name not in reg:
            assert not dataset.downloadable and dataset.licence, dataset.name
            continue
        for attr in ("gate", "licence", "citation", "title"):
            # the class must not restate what the registry holds
            assert all(attr not in vars(cls) for cls in type(dataset).__mro__[:-1]
                       if cls.__module__ != "hmifbench.datasets.base"), (dataset.name, attr)
            assert getattr(dataset, attr) == getattr(reg[dataset.name], attr)
        assert dataset.downloadable


def test_builtins_are_registered_from_the_explicit_list():
    assert [cls.name for cls in BUILTIN_DATASETS] == list(DATASETS)[:len(BUILTIN_DATASETS)]
    assert {"synthetic", "cave", "harvard", "ntire2018", "ncalm", "wv2"} == {c.name for c in BUILTIN_DATASETS}


def test_readers_module_still_exports_its_public_names():
    from hmifbench.datasets import readers

    for name in readers.__all__:
        assert getattr(readers, name) is not None
    assert readers.CAVE is type(get_dataset("cave"))


def _docs_table(header):
    """The rows of the table under ``header`` in docs/datasets.md, split into cells."""
    from tests.conftest import REPO

    lines = (REPO / "docs" / "datasets.md").read_text().splitlines()
    start = lines.index(header) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_docs_list_every_declared_option():
    rows = _docs_table("| dataset | options (default) |")
    for dataset in DATASETS.values():
        row = next((r for r in rows if f"`{dataset.name}`" in r[0]), None)
        assert row is not None, f"docs/datasets.md has no options row for {dataset.name}"
        for cls in filter(None, (dataset.Options, dataset.PairOptions)):
            for name in declared_options(cls):
                assert f"`{name}`" in row[1], f"docs/datasets.md: option {name} of {dataset.name} missing"


def test_docs_gate_column_agrees_with_the_registry():
    rows = {r[0].strip("`"): r for r in _docs_table("| name | what | cube | band centres | gate | reader |")}
    for dataset in DATASETS.values():
        if dataset.downloadable:
            assert rows[dataset.name][4] == dataset.gate, dataset.name
