"""Fetch, verify and unpack the real datasets named in ``datasets/registry.yaml``.

``download(name, root)`` leaves this layout::

    <root>/<name>/downloads/<file>        the archives as served, verified (never edited)
    <root>/<name>/<archive stem>/...      what each archive holds, extracted
    <root>/<name>/pinned.json             sha256 of files the registry has no checksum for,
                                          pinned at their first successful download
    <root>/<name>/manifest.json           written last: every file with size and sha256

``manifest.json`` is the output of the workflow's download rule, so it is only ever written
(atomically) once everything before it succeeded, and it is deleted first whenever a download
has to run again. After any failure there is no manifest and no partial extraction at a final
path; a partly downloaded file stays as ``downloads/<file>.part`` so that the next attempt
resumes it with an HTTP Range request.

Only the standard library's ``urllib`` is used for HTTP (no new dependency): streaming to a
``.part`` file with a tqdm bar, resume with ``Range`` (+ ``If-Range`` with the ETag or
Last-Modified seen before), a restart when the server ignores the range, mirrors tried in order,
an HTML page (a login or terms page served instead of the archive) recognised from its
content type and first bytes, sha256 verification, and extraction that refuses members with
absolute paths, ``..`` components, links leaving the target, or device files.

Nothing corrupt is pinned: a resumed download whose server reports a different ETag or
Last-Modified than the partial's restarts from zero (never joining two versions); a plain file
served with no length is accepted only when the registry gives its size or checksum; a
compressed tar is decompressed to the end (its CRC checked) before anything is extracted; and
an archive is refused when it would expand beyond the limits of :func:`extract_limits` (total
bytes, members, compression ratio) or beyond the free space. A full disk gives a
:class:`DiskFull` message saying what is kept for the next run.
"""

from __future__ import annotations

import bz2
import errno
import fnmatch
import gzip
import hashlib
import json
import lzma
import os
import shutil
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from http.client import HTTPException
from importlib import resources
from pathlib import Path, PurePosixPath

from hmifbench.errors import HmifError, InputError
from hmifbench.io import atomic_dir, write_json

#: environment variable that overrides every URL (tests, local mirrors); see :func:`download`
BASE_URL_ENV = "HMIFBENCH_DOWNLOAD_BASE_URL"
#: environment variable with comma-separated dataset names whose terms the user accepts
ACCEPT_TERMS_ENV = "HMIFBENCH_ACCEPT_TERMS"

CHUNK = 1 << 20

#: environment variables overriding the extraction limits (see :func:`extract_limits`)
MAX_BYTES_ENV = "HMIFBENCH_MAX_EXTRACT_BYTES"
MAX_MEMBERS_ENV = "HMIFBENCH_MAX_EXTRACT_MEMBERS"
MAX_RATIO_ENV = "HMIFBENCH_MAX_EXTRACT_RATIO"
#: default cap on what one archive may expand to when the registry gives no extracted_size
DEFAULT_MAX_BYTES = 256 << 30
DEFAULT_MAX_MEMBERS = 100_000
#: the deflate limit is about 1030:1; image data (PNG, MATLAB, rasters) stays far below 100:1
DEFAULT_MAX_RATIO = 100.0
#: members (or tar streams) smaller than this are not judged by their compression ratio
RATIO_FLOOR = 1 << 20
#: margin on the registry's extracted_size
SIZE_MARGIN = 1.1


class DownloadError(HmifError):
    """A download or its verification failed; the message lists what was tried."""


class DiskFull(DownloadError):
    """The file system filled while downloading or extracting; the message says what is kept."""


class ManualDownloadRequired(HmifError):
    """The dataset is gated: the user must place files (or accept terms) first."""


class TermsNotAccepted(ManualDownloadRequired):
    """A ``gate: terms`` dataset was requested without ``--accept-terms NAME``."""


# --------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset, as the registry lists it."""

    name: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    size: int | None = None
    archive: str | None = None          # "zip", "tar" or None
    extracted_size: int | None = None   # bytes the archive's members hold, when known
    inner_sha256: dict = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's registry record."""

    name: str
    title: str = ""
    homepage: str = ""
    licence: str = ""
    citation: str = ""
    gate: str = "none"                  # "none", "terms" or "manual"
    terms_url: str = ""
    files: tuple[FileSpec, ...] = ()
    placed_glob: str | None = None
    instructions: str = ""


def _check_sha(value, where):
    if value is None:
        return None
    value = str(value).lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise InputError(f"registry: {where}: sha256 must be 64 hex digits or null, got {value!r}")
    return value


def parse_registry(data: dict) -> dict[str, DatasetSpec]:
    """Turn the registry's YAML mapping into :class:`DatasetSpec` records (validated)."""
    out = {}
    for name, d in (data.get("datasets") or {}).items():
        gate = d.get("gate", "none")
        if gate not in ("none", "terms", "manual"):
            raise InputError(f"registry: {name}: gate must be none, terms or manual, got {gate!r}")
        files = []
        for f in d.get("files") or []:
            archive = f.get("archive")
            if archive not in (None, "zip", "tar"):
                raise InputError(f"registry: {name}/{f.get('name')}: archive must be zip, tar or null")
            inner = {k: _check_sha(v, f"{name}/{k}") for k, v in (f.get("inner_sha256") or {}).items()}
            files.append(FileSpec(name=f["name"], urls=tuple(f.get("urls") or ()),
                                  sha256=_check_sha(f.get("sha256"), f"{name}/{f['name']}"),
                                  size=f.get("size"), archive=archive, inner_sha256=inner,
                                  extracted_size=f.get("extracted_size"),
                                  note=str(f.get("note") or "")))
        out[name] = DatasetSpec(name=name, title=d.get("title", ""), homepage=d.get("homepage", ""),
                                licence=str(d.get("licence", "")), citation=str(d.get("citation", "")),
                                gate=gate, terms_url=d.get("terms_url", ""), files=tuple(files),
                                placed_glob=d.get("placed_glob"),
                                instructions=str(d.get("instructions", "")))
    return out


@lru_cache(maxsize=1)
def registry() -> dict[str, DatasetSpec]:
    """The registry shipped with the package (``datasets/registry.yaml``)."""
    import yaml

    text = resources.files("hmifbench.datasets").joinpath("registry.yaml").read_text()
    return parse_registry(yaml.safe_load(text))


def get_spec(name: str) -> DatasetSpec:
    try:
        return registry()[name]
    except KeyError:
        raise InputError(f"no downloadable dataset {name!r}; registry has {sorted(registry())}") from None


# --------------------------------------------------------------------------- small helpers

def sha256_of(path, chunk: int = CHUNK) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _archive_stem(filename: str) -> str:
    for ext in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".txz", ".tar", ".zip"):
        if filename.lower().endswith(ext):
            return filename[: -len(ext)]
    return filename + ".d"


#: first bytes of the formats we fetch, by file extension: (offset, magic) alternatives
_MAGIC = {
    ".zip": [(0, b"PK\x03\x04"), (0, b"PK\x05\x06")],
    ".tgz": [(0, b"\x1f\x8b")],
    ".gz": [(0, b"\x1f\x8b")],
    ".tar": [(257, b"ustar")],
    ".mat": [(0, b"MATLAB")],
    ".h5": [(0, b"\x89HDF\r\n\x1a\n")],
    ".tif": [(0, b"II*\x00"), (0, b"MM\x00*"), (0, b"II+\x00"), (0, b"MM\x00+")],
    ".tiff": [(0, b"II*\x00"), (0, b"MM\x00*"), (0, b"II+\x00"), (0, b"MM\x00+")],
    ".pix": [(0, b"PCIDSK")],
}


def _looks_like_html(head: bytes) -> bool:
    text = head[:1024].lstrip().lower()
    return text.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")) or b"<html" in text[:256]


def _magic_ok(filename: str, head: bytes) -> bool | None:
    """True/False when the extension has a known signature, None when it has none."""
    suffix = Path(filename.lower()).suffix
    alternatives = _MAGIC.get(suffix)
    if not alternatives:
        return None
    return any(head[off:off + len(m)] == m for off, m in alternatives)


def _head(path: Path, n: int = 1024) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def _base_url(base_url: str | None) -> str | None:
    return base_url or os.environ.get(BASE_URL_ENV) or None


def urls_for(spec: FileSpec, base_url: str | None = None) -> list[str]:
    """The URLs to try for a file: its mirrors, or ``base_url/<file name>`` when overridden."""
    base = _base_url(base_url)
    if base:
        return [base.rstrip("/") + "/" + spec.name]
    return list(spec.urls)


# --------------------------------------------------------------------------- HTTP

class _MirrorFailed(Exception):
    """This URL cannot give the file (404, HTML page, wrong bytes): try the next mirror."""


class _Retry(Exception):
    """A transient failure (connection dropped, 5xx): retry the same URL, resuming."""


def _sidecar(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _validators(headers) -> dict:
    return {"etag": headers.get("ETag"), "last_modified": headers.get("Last-Modified")}


def _changed_upstream(meta: dict, headers) -> str | None:
    """How a 206 reply's validators differ from the partial's record, or None when they agree."""
    for key, now in _validators(headers).items():
        before = meta.get(key)
        if before is not None and now != before:
            return f"{key.replace('_', '-')} {before!r} then, {now!r} now"
    return None


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _disk_full_while_fetching(part: Path, filename: str, total: int | None, err: OSError) -> DiskFull:
    kept = part.stat().st_size if part.exists() else 0
    need = (f"the file is {total} bytes, so {total - kept} more are needed" if total is not None
            else "the file's size is unknown")
    return DiskFull(f"{filename}: {err.strerror or 'No space left on device'} while writing {part} "
                    f"({kept} bytes written; {need}; {_free_bytes(part.parent)} bytes free now). "
                    f"The {kept} bytes are kept in {part.name} and the next run will resume from "
                    "there: free space (or choose another --root) and run the same command again")


def _fetch(url: str, part: Path, filename: str, *, expected_size: int | None, progress: bool,
           timeout: float, checksum_known: bool = False) -> bool:
    """Bring ``part`` to the complete body of ``url``, resuming what it already holds.

    Returns whether the end of the body was verified by the server's length (Content-Length,
    a chunked body's last chunk, a 416's total) or the registry's size; False when the body
    just ended with the connection. A partial is resumed only when its record holds an ETag or
    Last-Modified (or ``checksum_known``, since the checksum then catches any mix-up), and a
    206 reply whose validators differ from the record's restarts the file from zero.
    """
    side = _sidecar(part)
    meta = {}
    if side.exists():
        try:
            meta = json.loads(side.read_text())
        except ValueError:
            meta = {}
    have = part.stat().st_size if part.exists() else 0
    if have and meta.get("url") != url:
        have = 0                                  # a part from another mirror: start again
    if expected_size is not None and have > expected_size:
        have = 0
    if have and not (meta.get("etag") or meta.get("last_modified") or checksum_known):
        have = 0                                  # nothing could tell a changed file: start again
    headers = {"User-Agent": "hmifbench-downloader/1 (+https://github.com/)", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        etag = meta.get("etag")
        # If-Range needs a strong validator: a weak ETag ("W/...") is no use, fall back to the date.
        validator = etag if etag and not etag.startswith("W/") else meta.get("last_modified")
        if validator:
            headers["If-Range"] = validator
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:
            crange = (err.headers.get("Content-Range") or "") if err.headers else ""
            full = crange.rsplit("/", 1)[-1] if crange.startswith("bytes */") else ""
            if have == expected_size or (full.isdigit() and int(full) == have):
                return True                       # the part file is already complete
            part.unlink(missing_ok=True)
            raise _Retry(f"HTTP 416 for a range from byte {have}; restarting") from None
        if err.code in (408, 429) or err.code >= 500:
            raise _Retry(f"HTTP {err.code} {err.reason}") from None
        raise _MirrorFailed(f"HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, HTTPException, OSError) as err:
        reason = getattr(err, "reason", err)
        raise _Retry(f"connection failed: {reason}") from None

    with response:
        status = response.status
        ctype = (response.headers.get("Content-Type") or "").lower()
        if "text/html" in ctype and not filename.lower().endswith((".html", ".htm")):
            raise _MirrorFailed(f"served an HTML page (Content-Type {ctype!r}) instead of {filename}: "
                                "a login, terms or error page?")
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if status == 206:
            crange = response.headers.get("Content-Range", "")
            try:
                start = int(crange.split()[1].split("-")[0])
            except (IndexError, ValueError):
                start = -1
            if start != have:
                part.unlink(missing_ok=True)
                raise _Retry(f"server answered range {crange!r} to a request from byte {have}; restarting")
            changed = _changed_upstream(meta, response.headers)
            if changed:
                # The server ignored If-Range: joining its tail to our prefix would splice two versions.
                part.unlink(missing_ok=True)
                _sidecar(part).unlink(missing_ok=True)
                raise _Retry(f"the file changed upstream since the partial download ({changed}); "
                             "restarting from zero")
            mode = "ab"
        else:
            have, mode = 0, "wb"                  # the server ignored Range (or the file changed)
        total = have + length if length is not None else expected_size
        if expected_size is not None and total is not None and total != expected_size:
            raise _MirrorFailed(f"server announces {total} bytes, the registry expects {expected_size}")
        _sidecar(part).write_text(json.dumps({"url": url, **_validators(response.headers)}))
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=filename, disable=not progress, leave=False,
                   mininterval=0.2 if sys.stderr.isatty() else 30.0)
        received = 0
        try:
            with open(part, mode) as out:
                first = True
                while True:
                    try:
                        block = response.read(CHUNK)
                        # Judge the format on at least 1 KiB (tar's magic sits at byte 257).
                        while first and have == 0 and block and len(block) < 1024:
                            more = response.read(CHUNK)
                            if not more:
                                break
                            block += more
                    except (HTTPException, ConnectionError, socket.timeout, OSError) as err:
                        raise _Retry(f"connection dropped after {have + received} bytes: {err!r}") from None
                    if not block:
                        break
                    if first and have == 0:
                        if _looks_like_html(block):
                            raise _MirrorFailed(f"served an HTML page instead of {filename}: "
                                                "a login, terms or error page?")
                        if _magic_ok(filename, block) is False:
                            raise _MirrorFailed(f"the first bytes are not those of a "
                                                f"{Path(filename).suffix} file: {block[:16]!r}")
                    first = False
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _disk_full_while_fetching(part, filename, total, err) from None
            raise
        finally:
            bar.close()
        if length is not None and received < length:
            raise _Retry(f"connection closed after {have + received} of {have + length} bytes")
        if length is None and expected_size is not None and have + received < expected_size:
            raise _Retry(f"connection closed after {have + received} of {expected_size} bytes")
        return length is not None or bool(getattr(response, "chunked", False)) or expected_size is not None


def _self_delimiting(spec: FileSpec, path: Path) -> bool:
    """Whether the file's own format shows where it ends: a zip (central directory at the
    end) or a compressed tar (checked to the end of its stream before extraction)."""
    if spec.archive == "zip":
        return True
    return spec.archive == "tar" and _compression(path) is not None


def _fetch_with_mirrors(spec: FileSpec, dest: Path, expected_sha: str | None, urls: list[str], *,
                        progress: bool, timeout: float, retries: int, backoff: float) -> tuple[str, str]:
    """Download ``spec`` to ``dest`` (verified); returns ``(sha256, url)``.

    Each URL is tried with up to ``retries`` resumed retries after a transient failure; a
    permanent failure (404, HTML page, wrong first bytes, wrong size or sha256) moves on to the
    next mirror. A file with the wrong size or sha256 is kept aside as
    ``<file>.size-mismatch`` / ``<file>.sha256-mismatch`` for inspection, never under its name;
    one whose end could not be verified (no length from the server, no size or checksum in the
    registry, not an archive that shows its own end) as ``<file>.unverified``.
    """
    part = dest.with_name(dest.name + ".part")
    problems = []
    for url in urls:
        end_verified = _fetch_one(url, part, spec, problems, progress=progress, timeout=timeout,
                                  retries=retries, backoff=backoff, checksum_known=expected_sha is not None)
        if end_verified is None:
            continue
        size = part.stat().st_size
        if spec.size is not None and size != spec.size:
            _quarantine(part, dest.name + ".size-mismatch")
            problems.append(f"{url}: got {size} bytes, expected {spec.size}")
            continue
        if not (end_verified or expected_sha is not None or _self_delimiting(spec, part)):
            bad = _quarantine(part, dest.name + ".unverified")
            problems.append(
                f"{url}: served with no length (no Content-Length, not chunked), and the registry gives "
                f"neither a size nor a sha256 for {spec.name}, so a truncated file cannot be told from a "
                f"whole one; {size} bytes kept as {bad.name}, not pinned. Add the file's size or sha256 "
                f"to the registry (datasets/registry.yaml), or place a checked copy in {dest.parent}")
            continue
        digest = sha256_of(part)
        if expected_sha is not None and digest != expected_sha:
            bad = _quarantine(part, dest.name + ".sha256-mismatch")
            problems.append(f"{url}: sha256 {digest} does not match the expected {expected_sha} "
                            f"(kept as {bad.name})")
            continue
        os.replace(part, dest)
        _sidecar(part).unlink(missing_ok=True)
        return digest, url
    raise DownloadError(f"could not download {spec.name}:\n  " + "\n  ".join(problems or ["no URL to try"]))


def _fetch_one(url: str, part: Path, spec: FileSpec, problems: list, *, progress: bool, timeout: float,
               retries: int, backoff: float, checksum_known: bool = False) -> bool | None:
    """Try one URL (with resumed retries); None when it failed, else whether the end was verified."""
    for attempt in range(retries + 1):
        try:
            return _fetch(url, part, spec.name, expected_size=spec.size, progress=progress, timeout=timeout,
                          checksum_known=checksum_known)
        except _MirrorFailed as err:
            problems.append(f"{url}: {err}")
            part.unlink(missing_ok=True)
            _sidecar(part).unlink(missing_ok=True)
            return None
        except _Retry as err:
            if attempt == retries:
                kept = part.stat().st_size if part.exists() else 0
                problems.append(f"{url}: {err} (gave up after {retries} retries; {kept} bytes kept "
                                f"in {part.name} for the next attempt to resume)")
                return None
            time.sleep(backoff * 2 ** attempt)
    return None


def _quarantine(path: Path, name: str) -> Path:
    target = path.with_name(name)
    os.replace(path, target)
    _sidecar(path).unlink(missing_ok=True)
    return target


# --------------------------------------------------------------------------- extraction

def _safe_member_path(name: str, what: str) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or (p.parts and ":" in p.parts[0]) or ".." in p.parts:
        raise DownloadError(f"unsafe archive {what}: member {name!r} would be written outside the target")
    return p


def _inside(base: PurePosixPath, rel: PurePosixPath) -> bool:
    parts = []
    for part in (base / rel).parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return False
            parts.pop()
        else:
            parts.append(part)
    return True


def _check_zip(zf: zipfile.ZipFile, what: str) -> None:
    for info in zf.infolist():
        p = _safe_member_path(info.filename, what)
        mode = (info.external_attr >> 16) & 0o170000
        if mode == 0o120000:                       # a symbolic link stored in the zip
            target = PurePosixPath(zf.read(info).decode("utf-8", "replace"))
            if target.is_absolute() or not _inside(p.parent, target):
                raise DownloadError(f"unsafe archive {what}: link {info.filename!r} -> {str(target)!r} "
                                    "leaves the target")


def _check_tar(tf: tarfile.TarFile, what: str) -> None:
    for m in tf.getmembers():
        p = _safe_member_path(m.name, what)
        if m.issym():
            target = PurePosixPath(m.linkname)
            if target.is_absolute() or not _inside(p.parent, target):
                raise DownloadError(f"unsafe archive {what}: link {m.name!r} -> {m.linkname!r} leaves the target")
        elif m.islnk():
            target = PurePosixPath(m.linkname)
            if target.is_absolute() or not _inside(PurePosixPath(), target):
                raise DownloadError(f"unsafe archive {what}: hard link {m.name!r} -> {m.linkname!r} "
                                    "leaves the target")
        elif not (m.isfile() or m.isdir()):
            raise DownloadError(f"unsafe archive {what}: member {m.name!r} is a device or FIFO")


@dataclass(frozen=True)
class ExtractLimits:
    """What one archive may expand to; ``bytes_source`` says where ``max_bytes`` came from."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS
    max_ratio: float = DEFAULT_MAX_RATIO
    bytes_source: str = f"the default cap (set {MAX_BYTES_ENV} to change it)"


def _env_number(name: str, kind):
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    try:
        number = kind(value)
    except ValueError:
        number = -1
    if number <= 0:
        raise InputError(f"environment variable {name} must be a positive number, got {value!r}")
    return number


def extract_limits(spec: FileSpec | None = None) -> ExtractLimits:
    """The extraction limits for one registry file.

    Total bytes: ``HMIFBENCH_MAX_EXTRACT_BYTES`` when set, else the registry's
    ``extracted_size`` plus 10 %, else 256 GiB. Members:
    ``HMIFBENCH_MAX_EXTRACT_MEMBERS`` or 100 000. Compression ratio of any member (zip) or of
    the whole stream (compressed tar) larger than 1 MiB: ``HMIFBENCH_MAX_EXTRACT_RATIO`` or 100.
    """
    limits = ExtractLimits()
    env_bytes = _env_number(MAX_BYTES_ENV, int)
    if env_bytes is not None:
        limits = ExtractLimits(max_bytes=env_bytes, bytes_source=MAX_BYTES_ENV)
    elif spec is not None and spec.extracted_size:
        limits = ExtractLimits(max_bytes=int(spec.extracted_size * SIZE_MARGIN),
                               bytes_source=f"the registry's extracted_size {spec.extracted_size} + 10% "
                                            f"(or set {MAX_BYTES_ENV})")
    return ExtractLimits(max_bytes=limits.max_bytes, bytes_source=limits.bytes_source,
                         max_members=_env_number(MAX_MEMBERS_ENV, int) or DEFAULT_MAX_MEMBERS,
                         max_ratio=_env_number(MAX_RATIO_ENV, float) or DEFAULT_MAX_RATIO)


_COMPRESSORS = {b"\x1f\x8b": ("gzip", gzip.open), b"BZh": ("bzip2", bz2.open),
                b"\xfd7zXZ\x00": ("xz", lzma.open)}


def _compression(path: Path):
    """``(name, opener)`` of a compressed file recognised from its first bytes, or None."""
    head = _head(path, 8)
    return next((v for magic, v in _COMPRESSORS.items() if head.startswith(magic)), None)


def _refuse_ratio(what: str, member: str, expanded: int, packed: int, limits: ExtractLimits):
    raise DownloadError(f"{what}: {member} expands {expanded} bytes from {packed} (ratio "
                        f"{expanded / max(packed, 1):.0f}:1, more than the limit {limits.max_ratio:g}:1): "
                        f"refused as a possible archive bomb. If you trust the file, raise the limit "
                        f"with {MAX_RATIO_ENV}")


def _refuse_total(what: str, total: int, limits: ExtractLimits, counted: str = "expands to"):
    raise DownloadError(f"{what}: the archive {counted} {total} bytes, more than the limit "
                        f"{limits.max_bytes} from {limits.bytes_source}: refused")


def _scan_compressed_stream(archive: Path, limits: ExtractLimits) -> int:
    """Decompress a compressed tar to the end (so its CRC and length are checked); return the
    decompressed size. Stops early once the total or ratio limit is exceeded."""
    found = _compression(archive)
    if found is None:
        return archive.stat().st_size
    name, opener = found
    packed = archive.stat().st_size
    expanded = 0
    try:
        with opener(archive, "rb") as stream:
            while block := stream.read(CHUNK):
                expanded += len(block)
                if expanded > limits.max_bytes:
                    _refuse_total(archive.name, expanded, limits, "expands to more than")
                if expanded > RATIO_FLOOR and expanded / packed > limits.max_ratio:
                    _refuse_ratio(archive.name, f"its {name} stream (so far)", expanded, packed, limits)
    except EOFError:
        raise DownloadError(f"{archive.name}: truncated: the {name} stream ends before its end marker "
                            f"(after {expanded} decompressed bytes)") from None
    except (OSError, zlib.error, lzma.LZMAError, ValueError) as err:
        raise DownloadError(f"{archive.name}: corrupt {name} stream ({err}); a damaged download "
                            "(its CRC or data do not check)") from None
    return expanded


def _check_member_count(what: str, count: int, limits: ExtractLimits) -> None:
    if count > limits.max_members:
        raise DownloadError(f"{what}: {count} members, more than the limit {limits.max_members} "
                            f"(set {MAX_MEMBERS_ENV} to change it): refused")


def _check_zip_limits(zf: zipfile.ZipFile, what: str, limits: ExtractLimits) -> int:
    infos = zf.infolist()
    _check_member_count(what, len(infos), limits)
    for info in infos:
        # zipfile never inflates a member beyond its declared file_size, so these bound the output.
        if info.file_size > RATIO_FLOOR and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            _refuse_ratio(what, f"member {info.filename!r}", info.file_size, info.compress_size, limits)
    total = sum(info.file_size for info in infos)
    if total > limits.max_bytes:
        _refuse_total(what, total, limits)
    return total


def _check_tar_limits(tf: tarfile.TarFile, what: str, limits: ExtractLimits) -> int:
    members = tf.getmembers()
    _check_member_count(what, len(members), limits)
    total = sum(m.size for m in members if m.isfile())
    if total > limits.max_bytes:
        _refuse_total(what, total, limits)
    return total


def _check_free_space(archive: Path, folder: Path, total: int) -> None:
    free = _free_bytes(folder)
    if free is not None and total > free:
        raise DiskFull(f"{archive.name}: extracting needs {total} bytes in {folder}, but only {free} bytes "
                       f"free: nothing was extracted. The verified archive downloads/{archive.name} is "
                       "kept, so after freeing space the next run only extracts it")


def extract_archive(archive: Path, target: Path, kind: str, limits: ExtractLimits | None = None) -> Path:
    """Extract ``archive`` (``"zip"`` or ``"tar"``) to ``target`` atomically and safely.

    Before anything is written: a compressed tar is decompressed to its end (CRC and length
    checked); the members are checked (absolute paths, ``..``, links leaving the target,
    device files are refused with :class:`DownloadError`), and so is what they would expand
    to against ``limits`` (default :func:`extract_limits`) and the free space. Then the members
    are extracted into a temporary folder beside ``target``, which is renamed to ``target``
    only when everything is out. A previous ``target`` is replaced.

    Raises
    ------
    DownloadError
        Unsafe, corrupt or oversized archive; nothing is left at ``target``.
    DiskFull
        Too little space (before or while extracting); the partial extraction is removed.
    """
    archive, target = Path(archive), Path(target)
    limits = limits or extract_limits()
    if kind not in ("zip", "tar"):
        raise InputError(f"unknown archive kind {kind!r}")
    total = 0
    try:
        with atomic_dir(target, suffix=".extracting") as tmp:
            if kind == "zip":
                try:
                    with zipfile.ZipFile(archive) as zf:
                        _check_zip(zf, archive.name)
                        total = _check_zip_limits(zf, archive.name, limits)
                        bad = zf.testzip()
                        if bad is not None:
                            raise DownloadError(f"{archive.name}: member {bad!r} is corrupt (CRC mismatch)")
                        _check_free_space(archive, target.parent, total)
                        zf.extractall(tmp)
                except (zipfile.BadZipFile, zlib.error, EOFError) as err:
                    raise DownloadError(f"{archive.name}: not a valid zip file ({err})") from None
            else:
                _scan_compressed_stream(archive, limits)
                try:
                    with tarfile.open(archive) as tf:
                        _check_tar(tf, archive.name)
                        total = _check_tar_limits(tf, archive.name, limits)
                        _check_free_space(archive, target.parent, total)
                        tf.extractall(tmp, filter="data")
                except (tarfile.TarError, EOFError) as err:
                    raise DownloadError(f"{archive.name}: not a valid tar archive ({err})") from None
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DiskFull(f"{archive.name}: {err.strerror or 'No space left on device'} while extracting into "
                       f"{target.parent}: the members hold {total} bytes, {_free_bytes(target.parent)} bytes "
                       f"are free now. The partial extraction was removed; the verified archive "
                       f"downloads/{archive.name} is kept, so after freeing space the next run only "
                       "extracts it") from None
    return target


# --------------------------------------------------------------------------- the dataset level

def dataset_dir(root, name: str) -> Path:
    return Path(root) / name


def _ignored(rel: PurePosixPath) -> bool:
    """Files of the download machinery, not data: hidden, partial, quarantined, our JSON."""
    if any(part.startswith(".") for part in rel.parts):
        return True
    if rel.as_posix() in ("manifest.json", "pinned.json"):
        return True
    return rel.name.endswith((".part", ".part.json", ".sha256-mismatch", ".size-mismatch", ".unsafe",
                              ".unverified"))


def _data_files(d: Path) -> list[PurePosixPath]:
    out = []
    for path in sorted(d.rglob("*")):
        if path.is_file() and not path.is_symlink():
            rel = PurePosixPath(path.relative_to(d).as_posix())
            if not _ignored(rel):
                out.append(rel)
    return out


def _placed_files(spec: DatasetSpec, d: Path) -> list[PurePosixPath]:
    if not spec.placed_glob or not d.exists():
        return []
    pattern = spec.placed_glob
    return [p for p in _data_files(d) if fnmatch.fnmatch(p.as_posix(), pattern)
            or fnmatch.fnmatch(p.as_posix(), pattern.removeprefix("**/"))]


def _read_pins(d: Path) -> dict:
    path = d / "pinned.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text()).get("files", {})
    except ValueError as err:
        raise DownloadError(f"{path}: not valid JSON ({err}); fix or delete it") from None


def _write_pins(d: Path, pins: dict) -> None:
    write_json(d / "pinned.json", {
        "note": "sha256 of files whose checksum the registry does not publish, pinned at their first "
                "successful download; later downloads and --verify must match. Delete an entry only "
                "if you know the source changed legitimately.",
        "files": pins})


def _manual_message(spec: DatasetSpec, d: Path, missing: list[FileSpec], reason: str) -> str:
    downloads = d / "downloads"
    lines = [f"dataset {spec.name!r} ({spec.title}) {reason}."]
    if spec.instructions:
        lines.append(spec.instructions.format(downloads=downloads, dataset_dir=d,
                                              terms_url=spec.terms_url or spec.homepage))
    if missing:
        lines.append(f"Files expected in {downloads}:")
        for f in missing:
            sha = f.sha256 or "not published (pinned in pinned.json on first use)"
            size = f"{f.size} bytes" if f.size else "size unknown"
            lines.append(f"  {f.name}  ({size}; sha256 {sha})")
    if spec.placed_glob:
        lines.append(f"Files matching {spec.placed_glob!r} under {d} are accepted as well.")
    lines.append(f"Then check them with: hmifbench download {spec.name} --root {d.parent} --verify")
    lines.append(f"Licence: {spec.licence}")
    return "\n".join(lines)


def _manifest_intact(path: Path) -> bool:
    try:
        m = json.loads(path.read_text())
        d = path.parent
        return all((d / f["path"]).is_file() and (d / f["path"]).stat().st_size == f["size"]
                   for f in m["files"])
    except (ValueError, KeyError, TypeError, OSError):
        return False


def download(name: str, root, accept_terms=(), base_url: str | None = None, progress: bool = True, *,
             network: bool = True, timeout: float = 60.0, retries: int = 3, backoff: float = 1.0) -> Path:
    """Fetch, verify and extract dataset ``name`` into ``<root>/<name>/``; return its manifest path.

    Parameters
    ----------
    name : str
        A dataset of the registry (``cave``, ``harvard``, ``ntire2018``, ``ncalm``, ``wv2``).
    root : path
        The data root, e.g. ``resources/datasets``.
    accept_terms : iterable of str
        Names of ``gate: terms`` datasets whose terms the user accepted (``--accept-terms``);
        the environment variable ``HMIFBENCH_ACCEPT_TERMS`` (comma-separated) adds to it.
    base_url : str, optional
        Replace every URL of the dataset by ``base_url/<file name>`` (a local mirror, or a test
        server); defaults to the environment variable ``HMIFBENCH_DOWNLOAD_BASE_URL``.
    progress : bool
        Show a tqdm progress bar per file.
    network : bool
        False: use only files already in ``downloads/`` (what ``--verify`` does first).
    timeout, retries, backoff : float, int, float
        Socket timeout (s); retries per URL after a transient failure, resuming each time;
        the first wait (s), doubled at every retry.

    Returns
    -------
    Path
        ``<root>/<name>/manifest.json``.

    Raises
    ------
    ManualDownloadRequired
        For a ``manual`` dataset whose files are not in place, or (as :class:`TermsNotAccepted`)
        a ``terms`` dataset without acceptance; the message says which files to put where.
    DownloadError
        When every mirror failed, a checksum does not match, or an archive is unsafe or corrupt.
    """
    spec = get_spec(name)
    d = dataset_dir(root, name)
    manifest = d / "manifest.json"
    if manifest.exists():
        if _manifest_intact(manifest):
            return manifest
        manifest.unlink()
    downloads = d / "downloads"
    present = [f for f in spec.files if (downloads / f.name).is_file()]
    missing = [f for f in spec.files if f not in present]
    placed = _placed_files(spec, d)

    accepted = {a.strip() for a in accept_terms} | {
        a.strip() for a in os.environ.get(ACCEPT_TERMS_ENV, "").split(",") if a.strip()}
    use_archives = list(spec.files)
    if missing and placed and spec.gate != "none":
        # The user placed (extracted) data files instead of the archives: use what is there.
        use_archives, missing = present, []
    if not spec.files and not placed:
        raise ManualDownloadRequired(_manual_message(spec, d, [], "must be placed by hand"))
    if missing:
        if spec.gate == "manual":
            raise ManualDownloadRequired(_manual_message(spec, d, missing, "must be downloaded by hand"))
        if spec.gate == "terms" and name not in accepted:
            raise TermsNotAccepted(_manual_message(
                spec, d, missing, f"is distributed under terms you must accept first: read "
                f"{spec.terms_url or spec.homepage} and pass --accept-terms {name} "
                f"(or set {ACCEPT_TERMS_ENV}={name}), or place the files by hand"))
        if not network:
            raise DownloadError(f"{name}: files missing in {downloads}: {[f.name for f in missing]}; "
                                "run `hmifbench download` without --verify to fetch them")

    downloads.mkdir(parents=True, exist_ok=True)
    for stale in d.glob(".*.extracting"):      # left by a run that was killed mid-extraction
        shutil.rmtree(stale, ignore_errors=True)
    pins = _read_pins(d)
    archives = []
    new_pins = {}
    for f in use_archives:
        dest = downloads / f.name
        expected = f.sha256 or (pins.get(f.name) or {}).get("sha256")
        if dest.is_file():
            digest, url = sha256_of(dest), "local"
            if expected is not None and digest != expected:
                raise DownloadError(f"{dest}: sha256 {digest} does not match the expected {expected} "
                                    f"({'registry' if f.sha256 else 'pinned.json'}); delete or replace the file")
        else:
            urls = urls_for(f, base_url)
            digest, url = _fetch_with_mirrors(f, dest, expected, urls, progress=progress, timeout=timeout,
                                              retries=retries, backoff=backoff)
        if f.archive:
            try:
                target = extract_archive(dest, d / _archive_stem(f.name), f.archive, extract_limits(f))
            except DiskFull:
                raise                            # the archive is fine: keep it for the next run
            except DownloadError as err:
                if url == "local":               # never rename a file the user placed
                    raise
                bad = _quarantine(dest, dest.name + ".unsafe")
                raise DownloadError(f"{err}\nNothing was extracted or pinned; the archive is kept as "
                                    f"{bad} for inspection (delete it to download again)") from None
            for member, sha in f.inner_sha256.items():
                path = target / member
                if not path.is_file():
                    shutil.rmtree(target, ignore_errors=True)
                    raise DownloadError(f"{f.name}: expected member {member!r} is missing")
                if sha256_of(path) != sha:
                    shutil.rmtree(target, ignore_errors=True)
                    raise DownloadError(f"{f.name}: member {member!r} does not match its published sha256")
        if f.sha256 is None and f.name not in pins:
            new_pins[f.name] = {"sha256": digest, "size": dest.stat().st_size, "url": url,
                                "pinned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        archives.append({"name": f.name, "size": dest.stat().st_size, "sha256": digest, "url": url,
                         "checksum_source": "registry" if f.sha256 else
                         ("pinned.json" if f.name in pins else "pinned now")})
    if new_pins:
        _write_pins(d, {**pins, **new_pins})
    return _write_manifest(spec, d, archives)


def _write_manifest(spec: DatasetSpec, d: Path, archives: list[dict]) -> Path:
    # The archives were hashed a moment ago; do not read gigabytes twice.
    known = {f"downloads/{a['name']}": a["sha256"] for a in archives}
    files = [{"path": rel.as_posix(), "size": (d / rel).stat().st_size,
              "sha256": known.get(rel.as_posix()) or sha256_of(d / rel)} for rel in _data_files(d)]
    if not files:
        raise DownloadError(f"{spec.name}: no data files under {d}")
    return write_json(d / "manifest.json", {
        "dataset": spec.name, "title": spec.title, "licence": spec.licence, "citation": spec.citation,
        "gate": spec.gate, "archives": archives, "files": files,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def verify(name: str, root) -> Path:
    """Check a dataset on disk; return its manifest path.

    Without a manifest (e.g. after the user placed the files of a gated dataset) this runs
    :func:`download` without network: placed archives are checked against the registry or
    ``pinned.json``, extracted, and the manifest is written. With a manifest every listed file
    is hashed again and compared.

    Raises
    ------
    ManualDownloadRequired
        Files are still missing.
    DownloadError
        A file is missing, changed size or does not match its sha256 (the manifest is then
        deleted, so the workflow's download rule runs again).
    """
    d = dataset_dir(root, name)
    manifest = d / "manifest.json"
    if not manifest.exists():
        return download(name, root, network=False, progress=False)
    m = json.loads(manifest.read_text())
    problems = []
    for f in m.get("files", []):
        path = d / f["path"]
        if not path.is_file():
            problems.append(f"missing: {f['path']}")
        elif path.stat().st_size != f["size"]:
            problems.append(f"size changed: {f['path']}")
        elif sha256_of(path) != f["sha256"]:
            problems.append(f"sha256 changed: {f['path']}")
    pins = _read_pins(d)
    for a in m.get("archives", []):
        expected = next((f.sha256 for f in get_spec(name).files if f.name == a["name"]), None) \
            or (pins.get(a["name"]) or {}).get("sha256")
        if expected is not None and a["sha256"] != expected:
            problems.append(f"archive {a['name']}: sha256 {a['sha256']} != expected {expected}")
    if problems:
        manifest.unlink()
        raise DownloadError(f"{name}: verification failed in {d}:\n  " + "\n  ".join(problems))
    return manifest


def cli_download(name: str, root="resources/datasets", accept_terms=(), verify_only: bool = False,
                 base_url: str | None = None, progress: bool = True) -> Path:
    """What ``hmifbench download NAME [--root R] [--accept-terms N ...] [--verify]`` runs.

    Returns the manifest path; raises :class:`ManualDownloadRequired` (print its message,
    exit 2), :class:`DownloadError` (print, exit 1) or InputError (unknown name).
    """
    if verify_only:
        return verify(name, root)
    return download(name, root, accept_terms=accept_terms, base_url=base_url, progress=progress)
