"""Safe results directories: atomic writes, ownership marker, lock.

* Every file is written to a temporary name and renamed
  (:func:`sim.analysis.io.atomic_write`): a reader never sees a torn file, and a
  failed write is one line naming the path and the reason.
* A directory podnetsim creates holds a marker file (:data:`MARKER`); ``--force``
  and ``--resume`` only act on a directory that has it, and ``--force`` removes
  only the files podnetsim writes (:func:`remove_ours`).
* A batch holds an exclusive ``flock`` on :data:`LOCK` while it writes. The
  kernel drops the lock when the holder dies however it dies, so a lock file
  left by a killed batch is free: the next batch takes it over with a warning
  naming the dead holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path

import sim
from sim.analysis.io import atomic_write, atomic_write_text, write_error
from sim.errors import UserError

#: Re-exported from :mod:`sim.analysis.io` (their home since the figures use them too).
__all__ = ["atomic_write", "atomic_write_text", "write_error"]

MARKER = ".podnetsim-results"
LOCK = ".podnetsim.lock"
#: Files podnetsim writes at the top of a results directory.
TOP_FILES = (
    "runs.parquet",
    "runs.csv",
    "stations.parquet",
    "stations.csv",
    "flow_stations.parquet",
    "flow_stations.csv",
    "latency_quantiles.parquet",
    "tcp_series.parquet",
    "summary.csv",
    "stations_summary.csv",
    "flow_stations_summary.csv",
    "manifest.json",
    "report.html",
)
RUN_FILE = re.compile(r"c\d{3,}-r\d{2,}\.json")
#: Temporary names: ``.NAME.PID.tmp`` (see :func:`atomic_write`).
TMP_FILE = re.compile(r"\..+\.\d+\.tmp")
PLOT_FILE = re.compile(r"[a-z0-9-]+\.(png|svg)")


def is_ours(root: Path) -> bool:
    """Tell whether podnetsim created ``root``.

    It holds the marker file, or (results written before the marker existed) a
    podnetsim ``manifest.json``.
    """
    if (root / MARKER).is_file():
        return True
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and {"podnetsim_version", "schema_version"} <= set(manifest)


def mark_ours(root: Path) -> None:
    """Write the marker that says podnetsim created ``root``."""
    text = json.dumps({"created_by": "podnetsim", "version": sim.__version__}) + "\n"
    atomic_write_text(root / MARKER, text)


def remove_ours(root: Path) -> None:
    """Remove what podnetsim wrote in ``root``; leave every other file.

    Run files, damaged run files, tables, manifest, plots and temporary files
    go; directories are removed when nothing else is left in them.
    """
    for name in TOP_FILES:
        _unlink(root / name)
    for sub, pattern in (("runs/damaged", None), ("runs", RUN_FILE), ("plots", PLOT_FILE)):
        d = root / sub
        if not d.is_dir() or d.is_symlink():
            continue
        for p in d.iterdir():
            if p.is_file() and (pattern is None or pattern.fullmatch(p.name)):
                _unlink(p)
            elif p.is_file() and TMP_FILE.fullmatch(p.name):
                _unlink(p)
        with contextlib.suppress(OSError):
            d.rmdir()  # only if empty


def remove_temporaries(root: Path) -> None:
    """Remove temporary files a killed batch left (they never hold a finished file)."""
    for d in (root, root / "runs", root / "plots"):
        if d.is_dir():
            for p in d.iterdir():
                if TMP_FILE.fullmatch(p.name) and p.is_file():
                    _unlink(p)


def _unlink(p: Path) -> None:
    try:
        p.unlink(missing_ok=True)
    except IsADirectoryError:
        return
    except OSError as exc:
        raise write_error(p, exc) from None


class ResultsLock:
    """An exclusive lock on a results directory, held while a batch writes it.

    Parameters
    ----------
    root : Path
        The results directory (it must exist).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK
        self.fd: int | None = None

    def acquire(self, warn: Callable[[str], None]) -> None:
        """Take the lock, or fail naming the batch that holds it.

        Raises
        ------
        UserError
            Another live batch holds the lock, or the lock file cannot be made.
        """
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise write_error(self.path, exc) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise UserError(
                    f"results directory {str(self.root)!r} is being written by another "
                    f"podnetsim batch ({_describe(holder)})",
                    field="--out",
                    fix="wait for that batch to finish (or stop it), or choose another --out",
                ) from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder removed the file as we opened it: try again
        old = _read_holder(fd)
        if old and old != _me():
            warn(f"taking over the lock of a batch that is no longer running ({_describe(old)})")
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(_me()) + "\n").encode(), 0)
        self.fd = fd

    def release(self) -> None:
        """Remove the lock file and drop the lock."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self.fd)
        self.fd = None


def _me() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname()}


def _describe(holder: dict | None) -> str:
    if not holder:
        return "holder unknown"
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"


def _read_holder(fd: int) -> dict | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode() or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    me = os.fstat(fd)
    return (me.st_dev, me.st_ino) == (st.st_dev, st.st_ino)
