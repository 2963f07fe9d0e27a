"""Config validation: defaults filled, every bad key named."""

import copy

import pytest
import yaml

from hmifbench.config import load_config, validate_config
from hmifbench.errors import ConfigError
from tests.conftest import REPO

BASE = {"datasets": {"synthetic": {"scenes": ["scene01"]}}, "degradations": ["gauss-fwhm-x4"],
        "methods": {"gsa": {}, "gsa-ridge": {"method": "gsa", "params": {"ridge": 0.1}}}}


def test_defaults_are_filled():
    config = validate_config(copy.deepcopy(BASE))
    assert config["seed"] == 0 and config["setting"] == "known"
    assert config["metrics"] == {"profile": "canonical", "extra_profiles": [], "crop": 0, "data_range": 1.0}
    assert config["methods"]["gsa"]["method"] == "gsa"
    assert config["methods"]["gsa-ridge"]["params"] == {"ridge": 0.1}
    assert config["datasets"]["synthetic"]["options"] == {}


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.update(sead=1), "config key sead: unknown key"),
    (lambda c: c["datasets"]["synthetic"].update(scenes="scene01"), "config key datasets.synthetic.scenes"),
    (lambda c: c.update(degradations=["gauss-x99"]), "unknown protocol 'gauss-x99'"),
    (lambda c: c["methods"].update(foo={}), "config key methods.foo: no method named 'foo'"),
    (lambda c: c["methods"]["gsa"].update(params={"rigde": 1}), "config key methods.gsa: .*no parameter 'rigde'"),
    (lambda c: c.update(datasets={"cavee": {}}), "config key datasets.cavee: unknown dataset"),
    (lambda c: c.update(setting="half"), "config key setting"),
    (lambda c: c.update(metrics={"profile": "canonicl"}),
     r"config key metrics.profile: 'canonicl' is not one of \['canonical', 'mossfuse', 'yokoya'\]"),
    (lambda c: c.update(metrics={"profile": 3}), "config key metrics.profile: 3 is not one of"),
    (lambda c: c["methods"]["gsa"].update(params={"ridge": "big"}),
     "config key methods.gsa: parameter 'ridge' must be a number, got 'big'"),
])
def test_bad_keys_are_named(mutate, message):
    config = copy.deepcopy(BASE)
    mutate(config)
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_shipped_configs_are_valid():
    shipped = sorted((REPO / "config").glob("*.yaml"))
    assert {"config.yaml", "paper.yaml", "robustness.yaml", "robustness-cave.yaml"} <= {p.name for p in shipped}
    for path in shipped:
        load_config(path)


def test_unreadable_file_names_the_file(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("datasets: [\n")
    with pytest.raises(ConfigError, match="c.yaml: cannot read"):
        load_config(bad)
