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
@pytest.mark.parametrize("scale,size,shape", [(8, 23, (48, 40, 3)), (3, 5, (9, 12, 2)),
                                              (4, 4, (16, 16, 1))])
def test_spatial_degrade_torch_equals_the_observation_model(border, scale, size, shape):
    from hmifbench.methods._deep import spatial_degrade_torch
    from hmifbench.observation import gaussian_psf, spatial_degrade

    x = np.random.default_rng(0).random(shape).astype(np.float32)
    psf = gaussian_psf(size, 1.7, 2.3, 30)  # anisotropic and rotated: not separable
    for offset in sorted({0, max(scale // 2 - 1, 0), scale - 1}):
        want = spatial_degrade(x, psf, scale, offset, border)
        got = _deep.to_hwc(spatial_degrade_torch(_deep.to_nchw(x, torch.device("cpu")),
                                           torch.tensor(psf, dtype=torch.float32), scale, offset,
                                           border))
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-5)
