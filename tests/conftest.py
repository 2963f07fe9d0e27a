"""Shared fixtures: small synthetic scenes and pairs made by the project itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# HMIFBENCH_REAL_DATA points elsewhere (e.g. from a git worktree, whose parent has no shared/).
SHARED_REAL = Path(os.environ.get("HMIFBENCH_REAL_DATA") or REPO.parent / "shared" / "data" / "real")


@pytest.fixture(scope="session")
def scene64():
    from hmifbench.datasets.synthetic import make_scene

    return make_scene(seed=3, size=64)


@pytest.fixture(scope="session")
def real_data_dir():
    """../shared/data/real (or $HMIFBENCH_REAL_DATA), or a skip when this checkout has none
    (CI without shared/)."""
    if not SHARED_REAL.is_dir():
        pytest.skip("../shared/data/real is not available")
    return SHARED_REAL
