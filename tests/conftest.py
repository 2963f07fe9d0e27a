"""Shared fixtures: small synthetic scenes and pairs made by the project itself, and the
location of the optional shared data (real cubes, reference outputs).

The shared folder is ``$HMIFBENCH_SHARED`` when set, else ``shared/`` beside the checkout
(CI clones the repository with ``shared/`` next to it). Tests that need it skip without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HMIFBENCH_SHARED") or REPO.parent / "shared")
# HMIFBENCH_REAL_DATA points the real cubes elsewhere (e.g. from a git worktree).
SHARED_REAL = Path(os.environ.get("HMIFBENCH_REAL_DATA") or SHARED / "data" / "real")
SHARED_REFERENCE = SHARED / "data" / "reference"


@pytest.fixture(scope="session")
def scene64():
    from hmifbench.datasets.synthetic import make_scene

    return make_scene(seed=3, size=64)


@pytest.fixture(scope="session")
def real_data_dir():
    """The shared real cubes (``$HMIFBENCH_REAL_DATA``, else ``shared/data/real`` of
    ``$HMIFBENCH_SHARED`` or ``../shared``), or a skip when this checkout has none (CI without
    shared/)."""
    if not SHARED_REAL.is_dir():
        pytest.skip(f"{SHARED_REAL} is not available (set HMIFBENCH_SHARED)")
    return SHARED_REAL


@pytest.fixture(scope="session")
def mossfuse_reference_dir():
    """The released MossFuse checkpoint and the released code's outputs, or a skip."""
    folder = SHARED_REFERENCE / "mossfuse_cave_x32"
    if not (folder / "CAVE_32_model.pth").is_file():
        pytest.skip(f"{folder} is not available (set HMIFBENCH_SHARED)")
    return folder
