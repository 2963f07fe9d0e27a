"""Install the shipped Snakemake profiles (``slurm``, ``local``) into the user's config folder.

``snakemake --profile slurm`` looks a bare name up in the working directory, then in
Snakemake's user config folder, then in its site config folder; the folders come from
``platformdirs.AppDirs("snakemake", "snakemake")`` (``snakemake.common.get_appdirs``), i.e.
``$XDG_CONFIG_HOME/snakemake`` or ``~/.config/snakemake`` on Linux. From the repository root
the profile folders at the top level are found first; once installed, the same command works
from any folder.
"""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

from hmifbench.errors import HmifError
from hmifbench.site import REPO

PROFILES = ("slurm", "local")
# The files that make a profile: what Snakemake reads. Examples and notes stay in the repo.
PROFILE_FILE = "config.v8+.yaml"


def user_profile_root() -> Path:
    """Snakemake's user config folder, found the way Snakemake finds it."""
    from platformdirs import AppDirs

    return Path(AppDirs("snakemake", "snakemake").user_config_dir)


def source_dir(name: str) -> Path:
    if name not in PROFILES:
        raise HmifError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})")
    return REPO / "profiles" / name


def install_profile(name: str, force: bool = False, root: Path | None = None) -> dict:
    """Copy profile ``name`` into ``root/name`` (default: Snakemake's user config folder).

    Returns
    -------
    dict
        ``path``: the installed profile file; ``action``: ``"written"``, ``"unchanged"`` (the
        same profile was already there) or ``"replaced"`` (a different one, with ``force``);
        ``backup``: where the replaced folder was moved, or None.

    Raises
    ------
    HmifError
        A different profile of that name is installed and ``force`` is not set.
    """
    src = source_dir(name) / PROFILE_FILE
    dest_dir = (root or user_profile_root()) / name
    dest = dest_dir / PROFILE_FILE
    if dest_dir.exists() and not dest_dir.is_dir():
        raise HmifError(f"{dest_dir} exists and is not a folder")
    present = sorted(p.name for p in dest_dir.iterdir()) if dest_dir.is_dir() else []
    if present == [PROFILE_FILE] and filecmp.cmp(src, dest, shallow=False):
        return {"path": dest, "action": "unchanged", "backup": None}
    backup = None
    if present:
        if not force:
            raise HmifError(f"{dest_dir} holds a different profile ({', '.join(present)}); "
                            f"compare it with {src}, or use --force to replace it "
                            "(the old folder is kept as a backup)")
        backup = _free_name(dest_dir.with_name(f"{name}.backup"))
        dest_dir.rename(backup)  # nothing of the user's is deleted
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, tmp)
    tmp.replace(dest)
    return {"path": dest, "action": "replaced" if present else "written", "backup": backup}


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}{n}")
    return candidate
