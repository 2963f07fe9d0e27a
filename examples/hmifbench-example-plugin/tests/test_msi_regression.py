"""The plugin's own tests: hmifbench's conformance checks, one pytest case per check,
plus a test of what the method is for."""

import numpy as np

from hmifbench.testing import make_problem
from hmifbench.testing import parametrize_with_checks
from hmifbench_example_plugin import MSIRegression


@parametrize_with_checks([MSIRegression])
def test_hmifbench_checks(method, check):
    check(method)


def test_back_projection_brings_the_lr_hsi_back():
    problem, reference = make_problem(32, 32, 16)
    plain = MSIRegression(backprojection_steps=0).fuse(problem)
    fused = MSIRegression().fuse(problem)
    # The back-projected estimate agrees better with the LR-HSI and with the reference.
    assert fused.extras["lr_residual_rmse"] < 0.5 * plain.extras["lr_residual_rmse"]
    err = lambda x: np.sqrt(np.mean((x - reference) ** 2))
    assert err(fused.hr_hsi) < err(plain.hr_hsi)
