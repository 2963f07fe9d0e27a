"""Parity of MossFuse with the authors' released code and checkpoint.

The reference folder (``<shared>/data/reference/mossfuse_cave_x32``, see tests/conftest.py)
holds the released checkpoint, the released network's outputs on a fixed 128² input and its
training losses on a fixed batch. Tests that need it skip without it; the key-map tests on
our side of the map run everywhere.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hmifbench import methods  # noqa: E402
from hmifbench.errors import InputError  # noqa: E402
from hmifbench.methods import FusionProblem  # noqa: E402
from hmifbench.methods.mossfuse import released as R  # noqa: E402
from hmifbench.methods.mossfuse.network import MossFuseNet  # noqa: E402

torch.set_num_threads(1)

FORWARD_KEYS = ("fused", "srf", "psf", "msi_rec", "hsi_rec", "lr_msi_from_hsi", "lr_msi_from_msi",
                "lr_msi", "lr_hsi_from_fused", "msi_from_fused")


def expected_shapes(model):
    return {k: v.shape for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def ref(mossfuse_reference_dir):
    d = mossfuse_reference_dir
    return {"checkpoint": d / "CAVE_32_model.pth",
            "state": R.read_checkpoint(d / "CAVE_32_model.pth"),
            "forward": dict(np.load(d / "forward_feathers128.npz")),
            "batch": dict(np.load(d / "train_batch_feathers_charttoy128.npz")),
            "json": json.loads((d / "reference.json").read_text())}


def forward_errors(state, ref_forward, mapping=None, reshape=R.released_to_ours_shape):
    """Max |ours − released| per forward output, with the weights mapped by ``mapping``."""
    from hmifbench.methods.mossfuse.degradation import blur_decimate, spectral_project

    model = MossFuseNet(31, 3, 32)
    model.load_state_dict(R.to_ours(state, expected_shapes(model), mapping, reshape))
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(ref_forward["hr_msi"]), torch.from_numpy(ref_forward["lr_hsi"]))
        out["lr_hsi_from_fused"] = blur_decimate(out["fused"], out["psf"], 32, 15)
        out["msi_from_fused"] = spectral_project(out["fused"], out["srf"])
    return {k: float(np.abs(out[k].numpy() - ref_forward[k]).max()) for k in FORWARD_KEYS}


# ------------------------------------------------------------------ the key map (no shared data)

def test_key_map_is_injective_and_reaches_every_key_of_our_model():
    mapping = R.key_map(1)
    R.check_map(mapping)
    assert len(set(mapping.values())) == len(mapping) == 387
    assert set(mapping.values()) == set(MossFuseNet(31, 3, 32).state_dict())
    assert all(k.split(".")[0] in R.MODULES for k in mapping)
    # Each released top-level module lands in exactly one of ours.
    assert all(v.split(".")[0] == R.MODULES[k.split(".")[0]] for k, v in mapping.items())


def test_check_map_refuses_a_clash():
    mapping = R.key_map(1)
    mapping["modelE_MSI.baseFeature.0.gamma"] = mapping["modelE_MSI.baseFeature.1.gamma"]
    with pytest.raises(InputError, match="not injective"):
        R.check_map(mapping)


def test_round_trip_of_our_state_dict():
    torch.manual_seed(0)
    model = MossFuseNet(31, 3, 32)
    with torch.no_grad():
        for q in model.parameters():
            q.add_(torch.randn_like(q))
    ours = model.state_dict()
    released = R.to_released(ours)
    assert all(k.startswith("module.") for k in released)
    assert released["module.blind.srf"].shape == (3, 31, 1, 1)
    assert released["module.modelE_MSI.baseFeature.0.act.1.gamma"].shape == (1, 1, 1, 192)
    back = R.to_ours(R.strip_wrapper(released), expected_shapes(model))
    assert set(back) == set(ours) and all(torch.equal(back[k], ours[k]) for k in ours)


def test_config_mismatches_name_every_difference():
    from hmifbench.methods.mossfuse import config_mismatches

    release = {"width": 48, "blocks": 1, "heads": 8, "scale": 32, "bands": 31, "msi_bands": 3}
    bad = config_mismatches(release, {"width": 16, "blocks": 3, "heads": 8, "scale": 16,
                                      "bands": 30, "msi_bands": 4})
    text = " ".join(bad)
    assert len(bad) == 5 and all(w in text for w in ("width", "blocks", "scale", "HSI bands", "MSI bands"))


# ------------------------------------------------------------------ against the released code

def test_checkpoint_keys_are_exactly_the_map(ref):
    state = ref["state"]
    assert len(state) == 387
    assert set(state) == set(R.key_map(1))
    assert R.infer_config(state) == {"width": 48, "bands": 31, "msi_bands": 3, "heads": 8, "blocks": 1,
                                     "decoupling": True}


def test_only_grn_and_srf_are_reshaped(ref):
    model = MossFuseNet(31, 3, 32)
    mapped = R.to_ours(ref["state"], expected_shapes(model))
    mapping = R.key_map(1)
    reshaped = {mapping[k] for k, v in ref["state"].items() if tuple(v.shape) != tuple(mapped[mapping[k]].shape)}
    grn = {k for k in reshaped if k.endswith((".grn.gamma", ".grn.beta"))}
    assert reshaped == grn | {"degradation.srf"} and len(grn) == 2 * 9  # 9 large-kernel blocks
    for k, v in ref["state"].items():   # same numbers in the same order
        assert torch.equal(v.flatten(), mapped[mapping[k]].flatten())


def test_released_state_dict_round_trips(ref):
    model = MossFuseNet(31, 3, 32)
    ours = R.to_ours(ref["state"], expected_shapes(model))
    model.load_state_dict(ours)
    back = R.to_released(model.state_dict())
    assert set(back) == {"module." + k for k in ref["state"]}
    for k, v in ref["state"].items():
        assert back["module." + k].shape == v.shape and torch.equal(back["module." + k], v)


def test_forward_matches_the_released_code(ref):
    errors = forward_errors(ref["state"], ref["forward"])
    assert max(errors.values()) < 1e-4, errors


def test_fast_inference_path_matches_the_released_code(ref):
    """The method's own path (channels-last, fused operators, eval, inference mode)."""
    f = ref["forward"]
    problem = FusionProblem(f["lr_hsi"][0].transpose(1, 2, 0), f["hr_msi"][0].transpose(1, 2, 0), 32)
    out = methods.get("mossfuse", weights=str(ref["checkpoint"])).fuse(problem, device="cpu")
    fused = np.clip(f["fused"][0].transpose(1, 2, 0), 0, 1)
    assert np.abs(out.hr_hsi - fused).max() < 1e-4
    np.testing.assert_allclose(out.psf, f["psf"].astype(np.float64), atol=1e-6)
    assert np.abs(out.srf - f["srf"]).max() < 1e-3  # clipped at 0 and renormalised (raw min < 0)
    assert out.iterations is None and out.n_params == 585485
    assert out.extras["mode"] == "released" and len(out.extras["weights_sha256"]) == 64
    truth = f["truth"][0].transpose(1, 2, 0)
    psnr = np.mean(10 * np.log10(1 / ((out.hr_hsi - truth) ** 2).reshape(-1, 31).mean(0)))
    assert psnr == pytest.approx(ref["json"]["forward_quality_feathers128"]["psnr_band_mean_db"], abs=1e-3)


def test_training_losses_match_the_released_code(ref):
    """Each loss term at the released weights, network in train mode (batch statistics)."""
    from hmifbench.methods.mossfuse import losses as L

    model = MossFuseNet(31, 3, 32)
    model.load_state_dict(R.to_ours(ref["state"], expected_shapes(model)))
    model.train()
    msi, lr = torch.from_numpy(ref["batch"]["hr_msi"]), torch.from_numpy(ref["batch"]["lr_hsi"])
    expected = ref["json"]["train_losses_at_released_weights"]
    with torch.no_grad():  # values only; one forward pass feeds every term
        out = model(msi, lr)
        sct = L.self_supervised_terms(out, msi, lr, model.upsample, 32, 15)
        terms = {"sc": L.subspace_clustering_loss(out["fys"], out["fyc"], out["fxs"], out["fxc"]),
                 "ma": L.aggregation_loss(out, msi, lr, 32, 15), "de": L.degradation_loss(out),
                 "sct": L.self_supervised_loss(out, msi, lr, model.upsample, 32, 15)}
    for key in ("sc", "ma", "de", "sct"):
        assert float(terms[key]) == pytest.approx(expected[key], rel=1e-4), key
    assert set(sct) == set(expected["sct_terms"])
    for key, value in expected["sct_terms"].items():
        assert float(sct[key]) == pytest.approx(value, rel=1e-4), key


def test_a_wrong_key_map_breaks_parity(ref):
    """Exchanging two blocks of the same shape (the MSI encoder's second shared and second
    complementary large-kernel blocks) loads without complaint but fails the parity check."""
    mapping = R.key_map(1)
    a, b = "modelE_MSI.baseFeature.1.", "modelE_MSI.detailFeature.1."
    swapped = {k: (mapping[b + k[len(a):]] if k.startswith(a) else
                   mapping[a + k[len(b):]] if k.startswith(b) else v) for k, v in mapping.items()}
    errors = forward_errors(ref["state"], ref["forward"], swapped)
    assert errors["fused"] > 1e-3
    # Dropping an entry, or a clash, is refused outright.
    short = dict(mapping)
    short.pop("modelD_HR.fuse.weight")
    with pytest.raises(InputError, match="no counterpart"):
        R.to_ours(ref["state"], expected_shapes(MossFuseNet(31, 3, 32)), short)


def test_a_transposed_srf_breaks_parity(ref):
    def transposed_srf(ours, tensor):
        if ours == "degradation.srf":   # read (3, 31, 1, 1) as a (31, 3) matrix, transposed
            return tensor.reshape(31, 3).t()
        return R.released_to_ours_shape(ours, tensor)

    errors = forward_errors(ref["state"], ref["forward"], reshape=transposed_srf)
    assert errors["srf"] > 1e-3 and errors["lr_msi_from_hsi"] > 1e-4
    with pytest.raises(InputError, match="degradation.srf"):   # a plain transpose: wrong shape
        R.to_ours(ref["state"], expected_shapes(MossFuseNet(31, 3, 32)),
                  reshape=lambda k, t: t.reshape(3, 31).t() if k == "degradation.srf"
                  else R.released_to_ours_shape(k, t))


# ------------------------------------------------------------------ the method with weights

@pytest.fixture
def models_root(tmp_path, monkeypatch, ref):
    """A models root holding the registered release (a copy of the shared checkpoint)."""
    from hmifbench import weights

    spec = weights.get_spec("mossfuse-cave-x32")
    dest = tmp_path / "models" / spec.name / spec.file
    dest.parent.mkdir(parents=True)
    shutil.copyfile(ref["checkpoint"], dest)
    monkeypatch.setenv(weights.MODELS_ROOT_ENV, str(tmp_path / "models"))
    return tmp_path / "models"


def _problem(ref, size=64, scale=32, bands=31):
    f = ref["forward"]
    msi = f["hr_msi"][0, :, :size, :size].transpose(1, 2, 0)
    lr = f["lr_hsi"][0, :bands, :size // 32, :size // 32].transpose(1, 2, 0)
    if scale != 32:
        lr = f["truth"][0, :bands, scale // 2 - 1:size:scale, scale // 2 - 1:size:scale].transpose(1, 2, 0)
    return FusionProblem(lr, msi, scale)


def test_registered_weights_need_no_train_job_and_are_one_forward_pass(ref, models_root):
    cls = methods.get_class("mossfuse")
    m = methods.get("mossfuse", weights="mossfuse-cave-x32")
    assert not cls.trains_on_dataset(m.params) and cls.model_source(m.params) == "released"
    assert cls.trains_on_dataset(methods.get("mossfuse").params)
    out = m.fuse(_problem(ref), device="cpu")
    assert out.hr_hsi.shape == (64, 64, 31) and out.extras["weights"] == "mossfuse-cave-x32"
    assert out.psf.shape == (31, 31) and np.allclose(out.extras["psf_sigma_px"], 2.0, atol=0.01)
    with pytest.raises(InputError, match="needs no fit"):
        m.fit([_problem(ref)])


def test_finetuning_is_deterministic_and_moves_the_weights(ref, models_root):
    m = methods.get("mossfuse", weights="mossfuse-cave-x32", finetune_iterations=1, patch_size=64,
                    patch_stride=64)
    a = m.fuse(_problem(ref), seed=1, device="cpu")
    b = m.fuse(_problem(ref), seed=1, device="cpu")
    plain = methods.get("mossfuse", weights="mossfuse-cave-x32").fuse(_problem(ref), device="cpu")
    np.testing.assert_array_equal(a.hr_hsi, b.hr_hsi)
    assert a.iterations == 1 and not np.array_equal(a.hr_hsi, plain.hr_hsi)


def test_configurations_that_cannot_take_the_weights(ref, models_root):
    with pytest.raises(InputError) as err:
        methods.get("mossfuse", weights="mossfuse-cave-x32", width=16, blocks=3, heads=4)
    assert all(w in str(err.value) for w in ("'width' is 16", "'blocks' is 3", "'heads' is 4"))
    m = methods.get("mossfuse", weights="mossfuse-cave-x32")
    with pytest.raises(InputError) as err:
        m.fuse(_problem(ref, scale=16, bands=30), device="cpu")
    assert "scale is 16" in str(err.value) and "HSI bands is 30" in str(err.value)
    # A file path is checked against the shapes it holds.
    with pytest.raises(InputError, match="'width' is 16"):
        methods.get("mossfuse", weights=str(ref["checkpoint"]), width=16).fuse(_problem(ref))


def test_weight_parameters_are_validated(tmp_path, monkeypatch):
    from hmifbench import weights

    with pytest.raises(InputError, match="neither a registered release"):
        methods.get("mossfuse", weights="no-such-weights")
    with pytest.raises(InputError, match="exclude each other"):
        methods.get("mossfuse", weights="mossfuse-cave-x32", mode="per-scene")
    with pytest.raises(InputError, match="needs 'weights'"):
        methods.get("mossfuse", finetune_iterations=5)
    monkeypatch.setenv(weights.MODELS_ROOT_ENV, str(tmp_path))
    m = methods.get("mossfuse", weights="mossfuse-cave-x32")   # valid before any download
    x = np.random.default_rng(0).random((64, 64, 31)).astype(np.float32)
    problem = FusionProblem(x[15::32, 15::32], x[:, :, :3], 32)
    with pytest.raises(InputError, match="hmifbench download --model mossfuse-cave-x32"):
        m.fuse(problem, device="cpu")
