"""Download released model weights (``hmifbench download --model NAME``).

The registry is :mod:`hmifbench.weights` (``hmifbench/weights.yaml``); the transfer is the
dataset downloader's (:mod:`hmifbench.datasets.download`): mirrors in order, resumable
``.part`` files, an HTML page refused, size and sha256 verified before the file takes its
final name. The result is ``<root>/<name>/<file>``; nothing else is written beside it, so the
file's presence (with the registry's size) means a verified download.
"""

from __future__ import annotations

from pathlib import Path

from hmifbench import weights
from hmifbench.datasets.download import DownloadError, FileSpec, _fetch_with_mirrors, sha256_of, urls_for


def download_weights(name: str, root=None, base_url: str | None = None, progress: bool = True, *,
                     timeout: float = 60.0, retries: int = 3, backoff: float = 1.0) -> Path:
    """Fetch and verify the registered weights ``name`` into ``<root>/<name>/``; return the path.

    ``base_url`` (or ``HMIFBENCH_DOWNLOAD_BASE_URL``) replaces the mirrors by
    ``base_url/<file>``, as for datasets. A file already in place is checked, not fetched
    again; one that does not match is an error (it is never overwritten silently).

    Raises
    ------
    InputError
        Unknown name.
    DownloadError
        Every mirror failed, or the file in place does not match its sha256.
    """
    spec = weights.get_spec(name)
    dest = spec.path(root)
    if dest.is_file():
        digest = sha256_of(dest)
        if digest != spec.sha256:
            raise DownloadError(f"{dest}: sha256 {digest} does not match the registry's {spec.sha256}; "
                                "delete the file and download again")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    file = FileSpec(name=spec.file, urls=spec.urls, sha256=spec.sha256, size=spec.size)
    _fetch_with_mirrors(file, dest, spec.sha256, urls_for(file, base_url), progress=progress,
                        timeout=timeout, retries=retries, backoff=backoff)
    return dest
