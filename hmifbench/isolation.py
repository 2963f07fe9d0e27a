"""Run a method where its death cannot take the stage with it.

A method can die without raising: the kernel's OOM killer or a scheduler's memory limit sends
SIGKILL, a bug in compiled code ends in SIGSEGV. Run in the stage's own process, such a death
leaves no ``run.json``, and the tables (which need a record of every run) never get made.

:func:`run_isolated` calls a function in a forked child process and hands back what it
returned or raised, so a caller behaves as if it had called the function itself; when the
child dies instead, it raises :class:`MethodKilled` with the signal's name and the child's peak
memory (``wait4``), which the fuse stage records as a failed run.

Forking (not starting a new interpreter) costs milliseconds and no second import of numpy,
torch or the method: the child is a copy of the stage at the moment of the call. The parent
must not have initialised CUDA before the fork (the stages leave device choice to the
child). Where ``os.fork`` does not exist (Windows) the function runs in the caller's process.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import time
import traceback
from pathlib import Path

from hmifbench.errors import HmifError, InputError


class MethodKilled(HmifError, RuntimeError):
    """The child process running a method died from a signal or exited without a result.

    Attributes
    ----------
    signal_name : str or None
        e.g. ``"SIGKILL"``; None when the process exited with a status instead.
    exit_code : int or None
    peak_rss_mb : float or None
        The child's peak resident memory, MB.
    wall_s : float
        Seconds from the start of the child to its death.
    """

    def __init__(self, message: str, signal_name: str | None = None, exit_code: int | None = None,
                 peak_rss_mb: float | None = None, wall_s: float = 0.0):
        super().__init__(message)
        self.signal_name, self.exit_code = signal_name, exit_code
        self.peak_rss_mb, self.wall_s = peak_rss_mb, wall_s


class _RemoteTraceback(Exception):
    """Carries the child's formatted traceback as the ``__cause__`` of the re-raised exception."""

    def __str__(self):
        return "\n\n" + str(self.args[0]) if self.args else ""


#: what a signal usually means, for the message
_SIGNAL_HINTS = {
    "SIGKILL": "the kernel's OOM killer or a scheduler's memory or time limit usually does this",
    "SIGSEGV": "a crash in compiled code (segmentation fault)",
    "SIGBUS": "a crash in compiled code (bus error)",
    "SIGABRT": "the process aborted (a failed assertion in compiled code, or a library's abort())",
    "SIGTERM": "it was asked to stop (a scheduler's time limit or a cancelled job)",
    "SIGXCPU": "its CPU-time limit ran out",
}


def _die_with_parent() -> None:
    """Linux: the child gets SIGKILL when the stage dies, so no orphan keeps computing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _payload(kind: str, value, tb: str | None = None) -> bytes:
    """``(kind, pickled value or None, type name, message, traceback)``, pickled.

    The value is pickled on its own, so that an exception the parent cannot rebuild (a class
    defined in a plugin the parent never imported, or one that does not pickle) still arrives
    as its type name and message.
    """
    try:
        blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as err:  # noqa: BLE001 - anything unpicklable is reported, not lost
        if kind == "ok":
            return _payload("error", TypeError(f"the result of the isolated call cannot be sent back: {err}"),
                            traceback.format_exc())
        blob = None
    return pickle.dumps((kind, blob, type(value).__name__, str(value), tb), protocol=pickle.HIGHEST_PROTOCOL)


def _child(parent: int, fn, args, kwargs, write_fd: int) -> None:
    """Run in the forked child; never returns."""
    code = 0
    try:
        _die_with_parent()
        if os.getppid() != parent:          # the parent died before prctl took effect
            os._exit(1)
        try:
            data = _payload("ok", fn(*args, **kwargs))
        except BaseException as err:        # SystemExit and KeyboardInterrupt too: the parent re-raises
            data = _payload("error", err, traceback.format_exc())
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(data)
    except BaseException:                   # noqa: BLE001 - a broken pipe: the parent reports no result
        code = 70
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code)


def _read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as pipe:
        return pipe.read()


def _rebuild_error(blob: bytes | None, name: str, message: str, tb: str | None) -> BaseException:
    error = None
    if blob is not None:
        try:
            error = pickle.loads(blob)
        except Exception:  # noqa: BLE001 - e.g. a class from a plugin this process never imported
            error = None
    if not isinstance(error, BaseException):
        # Same type name and text, so records and messages read as if raised here.
        error = type(name, (RuntimeError,), {"__module__": __name__})(message)
    if tb:
        error.__cause__ = _RemoteTraceback(tb.rstrip())
    return error


def _death(status: int, usage, wall_s: float) -> MethodKilled:
    peak = usage.ru_maxrss / 1024.0 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = _SIGNAL_HINTS.get(name, "")
        return MethodKilled(f"the method's process was killed by signal {name} after {wall_s:.1f} s "
                            f"(peak memory {peak:.0f} MB){': ' + hint if hint else ''}",
                            signal_name=name, peak_rss_mb=peak, wall_s=wall_s)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    return MethodKilled(f"the method's process exited with status {code} after {wall_s:.1f} s without "
                        f"a result (peak memory {peak:.0f} MB): something called os._exit or the "
                        "result could not be sent back", exit_code=code, peak_rss_mb=peak, wall_s=wall_s)


def run_isolated(fn, *args, **kwargs):
    """Call ``fn(*args, **kwargs)`` in a forked child process.

    Returns
    -------
    What ``fn`` returned (pickled back to this process).

    Raises
    ------
    BaseException
        Whatever ``fn`` raised, re-raised here with the child's traceback as its ``__cause__``.
    MethodKilled
        The child died from a signal (or exited without sending a result).
    """
    if not hasattr(os, "fork"):
        return fn(*args, **kwargs)
    for stream in (sys.stdout, sys.stderr):  # or the child would print the buffered text again
        stream.flush()
    read_fd, write_fd = os.pipe()
    start = time.perf_counter()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(parent, fn, args, kwargs, write_fd)
    os.close(write_fd)
    try:
        data = _read_all(read_fd)             # until the child closes the pipe: it is done or dead
        _, status, usage = os.wait4(pid, 0)
    except BaseException:
        # Interrupted (Ctrl-C, a signal handler's exception): do not leave the child running.
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        except ProcessLookupError:
            pass
        raise
    wall_s = time.perf_counter() - start
    if not data:
        raise _death(status, usage, wall_s)
    kind, blob, name, message, tb = pickle.loads(data)
    if kind == "ok":
        return pickle.loads(blob)
    raise _rebuild_error(blob, name, message, tb)


def clear_outputs(out_dir, names) -> Path:
    """Make ``out_dir`` ready for a new run: refuse a path that is not a folder, remove ``names``.

    The record (the first name) goes first, so that an interrupted clean-up never leaves a
    record that describes files no longer there.

    Raises
    ------
    InputError
        ``out_dir`` exists and is not a folder.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; -o names the output folder "
                         f"(the run writes {', '.join(names)} inside it)")
    for name in names:
        (out / name).unlink(missing_ok=True)
    return out


#: what a fuse run writes into its folder, the record first (see :func:`clear_outputs`)
FUSE_OUTPUTS = ("run.json", "hr_hsi.hdr", "hr_hsi.img")


def fuse_isolated(fuse_here, method: str, pair_dir, out_dir, on_kill: str = "record", **options) -> dict:
    """Run the fuse stage ``fuse_here(method, pair_dir, out_dir, **options)`` in a child process.

    Outputs of an earlier run in ``out_dir`` are removed first, so that a failed record never
    sits beside an older cube. The child writes the cube and ``run.json`` as the stage does in
    one process (provenance, timing and memory measured where the method runs). When the child
    dies from a signal, this process writes the failed ``run.json`` instead: the error names the
    signal, ``timing`` holds the child's peak memory, ``signal`` the signal's name. Then, as for
    any failure, ``on_error="record"`` returns the record and ``"raise"`` raises
    :class:`MethodKilled`. With ``on_kill="fail"`` nothing is recorded and
    :class:`MethodKilled` is raised, so that a scheduler retries the job (with more memory).
    """
    if on_kill not in ("record", "fail"):
        raise InputError(f"on_kill must be 'record' or 'fail', got {on_kill!r}")
    from hmifbench.io import write_json
    from hmifbench.provenance import provenance

    out = clear_outputs(out_dir, FUSE_OUTPUTS)
    try:
        return run_isolated(fuse_here, method, pair_dir, out, **options)
    except MethodKilled:
        clear_outputs(out, FUSE_OUTPUTS)   # a cube written just before the death is not this record's
        if on_kill == "fail":
            raise
        died = sys.exc_info()[1]
        record = {"entry": options.get("entry") or method, "method": method,
                  "params": options.get("params") or {}, "setting": options.get("setting", "known"),
                  "pair": str(pair_dir), "status": "failed", "error": f"MethodKilled: {died}",
                  "signal": died.signal_name, "exit_code": died.exit_code,
                  "timing": {"fuse_s": None, "wall_s": died.wall_s, "peak_rss_mb": died.peak_rss_mb,
                             "peak_gpu_mb": None},
                  "provenance": {**provenance(seed=options.get("seed")),
                                 "config_hash": options.get("config_hash")}}
        write_json(out / "run.json", record)
        if options.get("on_error", "raise") != "record":
            raise
        return record
