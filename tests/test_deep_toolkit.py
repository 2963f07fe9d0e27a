"""The shared toolkit of deep methods: resumable loop, convergence curve, layout helpers."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hmifbench.errors import InputError  # noqa: E402
from hmifbench.methods import _deep  # noqa: E402


def _toy(seed):
    _deep.seed_everything(seed)
    net = torch.nn.Linear(4, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    x = torch.linspace(-1, 1, 32).reshape(8, 4)
    y = x.sum(dim=1, keepdim=True)

    def step(t):
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    return net, opt, step


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    net, opt, step = _toy(0)
    full = _deep.run_iterations(step, 20, modules={"net": net, "opt": opt}, record_every=5)
    reference = [p.detach().clone() for p in net.parameters()]

    ckpt = tmp_path / "ckpt.pt"
    net, opt, step = _toy(0)
    _deep.run_iterations(step, 10, modules={"net": net, "opt": opt}, checkpoint=ckpt,
                         signature={"a": 1}, checkpoint_every=10, record_every=5)
    net, opt, step = _toy(0)  # a new process: fresh weights, then the checkpoint
    resumed = _deep.run_iterations(step, 20, modules={"net": net, "opt": opt}, checkpoint=ckpt,
                                   signature={"a": 1}, checkpoint_every=10, record_every=5)
    assert resumed["resumed_from"] == 10
    for a, b in zip(reference, net.parameters()):
        assert torch.equal(a, b)
    assert resumed["convergence"] == full["convergence"]
    assert full["convergence"]["iteration"] == [5, 10, 15, 20]
    assert full["convergence"]["loss"][-1] < full["convergence"]["loss"][0]


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    net, opt, step = _toy(0)
    _deep.run_iterations(step, 2, modules={"net": net}, checkpoint=ckpt, signature={"a": 1})
    with pytest.raises(InputError, match="different configuration"):
        _deep.run_iterations(step, 4, modules={"net": net}, checkpoint=ckpt, signature={"a": 2})


def test_layout_round_trip_and_parameter_count():
    cube = np.random.default_rng(0).random((5, 6, 3), dtype=np.float32)
    t = _deep.to_nchw(cube, torch.device("cpu"))
    assert t.shape == (1, 3, 5, 6)
    np.testing.assert_array_equal(_deep.to_hwc(t), cube)
    shared = torch.nn.Linear(3, 2)
    assert _deep.count_parameters(shared, shared) == 8


def test_progress_callback_sees_every_iteration():
    net, opt, step = _toy(1)
    seen = []
    _deep.run_iterations(step, 3, modules={}, progress=lambda i, n, losses: seen.append((i, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("border", ["reflect101", "symmetric", "wrap", "zero"])
@pytest.mark.parametrize("scale,offset,ksize", [(8, 3, 23), (4, 1, 5), (4, 0, 4), (3, 2, 7)])
def test_spatial_degrade_torch_equals_the_suites_spatial_degradation(border, scale, offset, ksize):
    from hmifbench.observation import spatial_degrade

    rng = np.random.default_rng(0)
    x = rng.random((24, 48, 3)).astype(np.float32)
    psf = rng.random((ksize, ksize + 1))  # no symmetry, not square: catches flips and shifts
    psf /= psf.sum()
    expected = spatial_degrade(x, psf, scale, offset, border)
    got = _deep.spatial_degrade_torch(_deep.to_nchw(x, torch.device("cpu")),
                              torch.as_tensor(psf, dtype=torch.float32), scale, offset, border)
    np.testing.assert_allclose(_deep.to_hwc(got), expected, atol=2e-6)


def test_spatial_degrade_torch_refuses_an_unknown_border():
    with pytest.raises(InputError, match="border"):
        _deep.spatial_degrade_torch(torch.zeros(1, 1, 8, 8), torch.ones(3, 3) / 9, 4, 1, "mirror")


def test_problem_fingerprint_changes_with_the_data_and_the_degradation():
    from hmifbench.methods import FusionProblem

    rng = np.random.default_rng(0)
    lr, hr = rng.random((4, 4, 5)), rng.random((16, 16, 2))
    base = _deep.problem_fingerprint(FusionProblem(lr, hr, 4))
    assert base == _deep.problem_fingerprint(FusionProblem(lr.copy(), hr.copy(), 4))
    hr2 = hr.copy()
    hr2[0, 0, 0] += 1e-3
    assert base != _deep.problem_fingerprint(FusionProblem(lr, hr2, 4))
    assert base != _deep.problem_fingerprint(FusionProblem(lr, hr, 4, offset=0))
    assert base != _deep.problem_fingerprint(FusionProblem(lr, hr, 4, psf=np.ones((3, 3)) / 9))


def test_load_fitted_state_takes_a_record_or_a_checkpoint_and_checks_its_format(tmp_path):
    record = {"format": "x/1", "model": {"w": torch.zeros(2)}}
    assert _deep.load_fitted_state(record, "m", "x/1", "needs fit") is record
    _deep.save_atomic(record, tmp_path / "model.pt")
    for state in (str(tmp_path / "model.pt"), {"checkpoint": str(tmp_path / "model.pt")}):
        loaded = _deep.load_fitted_state(state, "m", "x/1", "needs fit")
        assert torch.equal(loaded["model"]["w"], record["model"]["w"])
    with pytest.raises(InputError, match="needs fit"):
        _deep.load_fitted_state(None, "m", "x/1", "needs fit")
    with pytest.raises(InputError, match="not a m model"):
        _deep.load_fitted_state(record, "m", "y/1", "needs fit")
    with pytest.raises(InputError, match="does not exist"):
        _deep.load_fitted_state({"checkpoint": str(tmp_path / "no.pt")}, "m", "x/1", "needs fit")
