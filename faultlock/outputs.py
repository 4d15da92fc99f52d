"""Where outputs go and how they are written: one check, one atomic writer, one lock.

Every command that writes (``whatif``, ``validate``, ``sweep``, ``figures``, ``paper``,
``measure``, ``calibrate``, ``compare``) follows the same rules, checked by :func:`check_output`
*before* any computation:

* **The parent directory must exist.** faultlock creates no parent directories (a typo in a path
  would otherwise scatter outputs silently); it must be a directory, and writable by this process
  (tested by creating an unnamed temporary file there, so read-only file systems, ACLs and root
  are all judged by the kernel itself).
* **The name says the format**: ``.nc`` is a netCDF file, ``.zarr`` a zarr store (a directory),
  ``.json`` a JSON file; figure and paper outputs are directories.
* **An existing output is refused** unless ``--force`` (``force=True``), and even then only an
  output of the same kind is replaced: a file by a file, a zarr store (or an empty directory) by a
  zarr store. An arbitrary directory is never deleted. A sweep store is reopened only with
  ``--resume`` (or started again with ``--force``), and never while another process writes it.

Writes go to a temporary sibling (a hidden name in the same directory, so on the same file
system) that is renamed into place when complete (:func:`replacing`): a reader sees the old output
or the new one, never half of one, and a run that fails or is killed leaves the old output (plus,
after ``kill -9``, a hidden temporary that the next write to the same name removes).

:class:`DirectoryLock` is the lock a sweep store carries while it is written: ``flock(2)`` on a
file inside the store, which the kernel releases when the holder dies, so a store left by
``kill -9`` is never locked forever, and a second writer is refused at once with the first one's
pid and host.

Errors are :class:`OutputError` (a ValueError) naming the option, the path and what is allowed;
the CLI prints them as one line and exits with status 2.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Self

__all__ = ["DIRECTORY", "FORMATS", "DirectoryLock", "OutputError", "check_output",
           "created_directory", "is_zarr_store", "jsonable", "lock_holder", "replacing",
           "write_dataset", "write_text"]

#: what each output suffix means (the ``allowed`` part of the messages)
FORMATS = {
    ".nc": "a netCDF file",
    ".zarr": "a zarr store, a directory",
    ".json": "a JSON file",
    ".md": "a Markdown file",
    ".png": "a PNG image",
    ".pdf": "a PDF file",
}
#: ``formats`` value of an output that is a directory of files (figures, the paper build)
DIRECTORY = "directory"
#: the lock file inside a directory being written (see :class:`DirectoryLock`)
LOCK_NAME = ".faultlock.lock"
_TEMP_TAG = "faultlock-tmp"
_OLD_TAG = "faultlock-old"


class OutputError(ValueError):
    """An output path that cannot be written as asked (nothing has been written)."""


# ---- the check ----------------------------------------------------------------------------------
def _describe(formats: Iterable[str]) -> str:
    return " or ".join(f"{suffix} ({FORMATS[suffix]})" for suffix in formats)


def is_zarr_store(path: Path) -> bool:
    """A directory holding zarr metadata at its root (v3 ``zarr.json`` or v2 ``.zgroup``)."""
    return path.is_dir() and any((path / name).is_file()
                                 for name in ("zarr.json", ".zgroup", ".zarray"))


def _is_empty_dir(path: Path) -> bool:
    """No entries but a lock file left behind (a writer killed before it wrote anything)."""
    return path.is_dir() and all(p.name == LOCK_NAME for p in path.iterdir())


def _probe_writable(directory: Path, option: str, path: Path) -> None:
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot write in {directory} ({exc.strerror}); "
                          "allowed: a path in a directory this user can write") from None


def check_output(path: str | os.PathLike, formats: Iterable[str] | str, *,
                 option: str = "--output", force: bool = False, reuse: bool = False,
                 reuse_hint: str = "") -> Path:
    """Check an output path before any work is done; return it as a :class:`~pathlib.Path`.

    Parameters
    ----------
    path : where the command will write
    formats : the suffixes allowed (keys of :data:`FORMATS`), or :data:`DIRECTORY`
    option : the option named in messages (``-o/--output``, ``store``)
    force : replace an existing output of the same kind
    reuse : an existing output is continued, not replaced (``--resume``, a paper build
        directory): allowed if it has the right kind
    reuse_hint : what to suggest, besides ``--force``, when the output exists

    Raises
    ------
    OutputError
        The name does not match a format, the parent is missing, not a directory or not
        writable, or the output exists (without ``force``/``reuse``) or cannot be replaced.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise OutputError(f"{option} {path!r} is not allowed: a file system path")
    path = Path(path)
    as_directory = formats == DIRECTORY
    if not as_directory:
        formats = tuple(formats)
        if path.suffix not in formats:
            raise OutputError(f"{option} {path} is not allowed: a path ending in "
                              f"{_describe(formats)}")
    parent = Path(os.path.abspath(path)).parent
    if not parent.exists():
        raise OutputError(f"{option} {path}: directory {parent} does not exist; allowed: a path "
                          "in an existing directory (faultlock creates no parent directories)")
    if not parent.is_dir():
        raise OutputError(f"{option} {path}: {parent} is not a directory; allowed: a path in "
                          "an existing directory")
    directory_kind = as_directory or path.suffix == ".zarr"
    exists = path.exists() or path.is_symlink()
    if exists and directory_kind and _is_empty_dir(path):
        exists = False  # an empty directory is a new output
    if not exists:
        _probe_writable(parent, option, path)
        if path.is_dir():  # empty: written in place (a sweep, figures) or replaced (a dataset)
            _probe_writable(path, option, path)
        return path
    if directory_kind and not path.is_dir():
        raise OutputError(f"{option} {path}: exists and is not a directory; allowed: "
                          f"{'a directory' if as_directory else _describe(formats)}, or a new "
                          "path")
    if not directory_kind and not path.is_file():
        raise OutputError(f"{option} {path}: exists and is not a file; allowed: "
                          f"{_describe(formats)}, or a new path")
    holder = lock_holder(path) if path.is_dir() else None
    if holder is not None:
        raise OutputError(f"{option} {path}: is being written by another faultlock process "
                          f"({holder}); allowed: wait for it to finish, or another path")
    if reuse:
        _probe_writable(path if path.is_dir() else parent, option, path)
        return path
    if not force and as_directory:
        raise OutputError(f"{option} {path}: exists and is not empty; allowed: --force to write "
                          "into it (files of the same names are replaced), or a new or empty "
                          "directory")
    if not force:
        hint = f"{reuse_hint}, " if reuse_hint else ""
        raise OutputError(f"{option} {path}: exists; allowed: {hint}--force to replace it, or a "
                          "new path")
    if path.suffix == ".zarr" and not as_directory and not is_zarr_store(path):
        raise OutputError(f"{option} {path}: is a directory but not a zarr store, and --force "
                          "replaces only a zarr store; allowed: a new path (or remove it first)")
    _probe_writable(path if as_directory else parent, option, path)
    return path


# ---- the atomic writer ---------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sibling(path: Path, tag: str) -> Path:
    """A hidden name beside ``path``, same suffix (engines that look at it still see it)."""
    return path.with_name(f".{path.stem}-{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _remove_stale_temporaries(path: Path) -> None:
    """Temporaries of earlier writes to ``path`` whose process is gone (``kill -9``)."""
    for tag in (_TEMP_TAG, _OLD_TAG):
        for candidate in path.parent.glob(f".{path.stem}-{tag}-*{path.suffix}"):
            try:
                pid = int(candidate.name[len(f".{path.stem}-{tag}-"):].split("-")[0])
            except ValueError:
                continue
            if pid != os.getpid() and not _pid_alive(pid):
                _remove(candidate)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _put_in_place(temporary: Path, path: Path) -> None:
    if not path.exists() and not path.is_symlink():
        os.replace(temporary, path)  # a new name, or an empty directory
    elif temporary.is_dir() and path.is_dir() and not path.is_symlink():
        if _exchange(temporary, path):  # the old store now sits at the temporary name
            _remove(temporary)
            return
        old = _sibling(path, _OLD_TAG)
        os.rename(path, old)  # two renames: at every moment one complete store exists
        try:
            os.rename(temporary, path)
        except OSError:
            os.rename(old, path)
            raise
        _remove(old)
    else:
        os.replace(temporary, path)  # a file over a file: atomic


@contextlib.contextmanager
def replacing(path: str | os.PathLike, option: str = "--output") -> Iterator[Path]:
    """Write ``path`` through a temporary sibling: yields the temporary path; when the block ends
    without error the temporary is renamed onto ``path`` (a file atomically; a directory by
    ``renameat2`` exchange where the kernel offers it, else two renames); on error it is
    removed and ``path`` is untouched. OS errors become :class:`OutputError`."""
    path = Path(path)
    _remove_stale_temporaries(path)
    temporary = _sibling(path, _TEMP_TAG)
    try:
        yield temporary
        _put_in_place(temporary, path)
    except OSError as exc:
        _remove(temporary)
        raise OutputError(f"{option} {path}: cannot write it ({exc.strerror or exc}); nothing "
                          "was replaced") from None
    except BaseException:
        _remove(temporary)
        raise


def write_text(path: str | os.PathLike, text: str, option: str = "--output") -> Path:
    """Write a text file atomically (see :func:`replacing`)."""
    with replacing(path, option) as temporary:
        temporary.write_text(text)
    return Path(path)


def write_dataset(ds: Any, path: str | os.PathLike, option: str = "--output") -> Path:
    """Write an xarray Dataset atomically, in the format its suffix names: ``.nc`` (netCDF),
    ``.zarr`` (a zarr store) or ``.json`` (xarray's dict form; non-finite numbers as null)."""
    path = Path(path)
    if path.suffix not in (".nc", ".zarr", ".json"):
        raise OutputError(f"{option} {path} is not allowed: a path ending in "
                          f"{_describe(('.nc', '.zarr', '.json'))}")
    with replacing(path, option) as temporary:
        if path.suffix == ".nc":
            ds.to_netcdf(temporary)
        elif path.suffix == ".zarr":
            with warnings.catch_warnings():  # zarr's notes on v3 string types and consolidated
                warnings.simplefilter("ignore", UserWarning)  # metadata: not about this write
                ds.to_zarr(temporary, mode="w-")
        else:
            temporary.write_text(json.dumps(jsonable(ds.to_dict(data="list"))))
    return path


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and non-finite floats as None (JSON)."""
    import numpy as np
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# ---- the lock -----------------------------------------------------------------------------------
def _read_lock(file: Path) -> dict[str, Any]:
    try:
        return json.loads(file.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _describe_holder(info: dict[str, Any]) -> str:
    return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')}, since "
            f"{info.get('started', '?')}")


def lock_holder(directory: str | os.PathLike) -> str | None:
    """Who holds the lock of ``directory`` (``"pid N on host H, since T"``), or None if nobody
    does: a shared ``flock`` tried and at once released, so that a lock file left by a dead
    process (on this host or another) counts for nothing."""
    file = Path(directory) / LOCK_NAME
    try:
        fd = os.open(file, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _describe_holder(_read_lock(file))
    except OSError:
        return None
    finally:
        os.close(fd)  # closing drops the probe's lock
    return None


class DirectoryLock:
    """An exclusive ``flock(2)`` on ``DIRECTORY/.faultlock.lock``, held while a process writes
    the directory (a sweep store).

    The kernel releases a flock when its holder dies, so ``kill -9`` leaves no lock behind: the
    file may remain, but the next writer takes it. A second writer, in this process or another,
    is refused at once (:class:`OutputError`) with the holder's pid, host and start time, which
    the holder writes into the file. On release the file is removed, and a writer that locked a
    file just removed (its inode no longer at the path) tries again, so two writers never hold
    locks on different files of the same name.
    """

    def __init__(self, directory: str | os.PathLike, option: str = "--output"):
        self.directory = Path(directory)
        self.file = self.directory / LOCK_NAME
        self.option = option
        self._fd: int | None = None

    def acquire(self, command: str = "") -> Self:
        for _ in range(100):
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                info = _read_lock(self.file)
                raise OutputError(
                    f"{self.option} {self.directory}: is being written by another faultlock "
                    f"process ({_describe_holder(info)}); allowed: wait for it to finish, or "
                    "another path") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.file).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder released (and removed) it while we were opening it
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                     "command": command}).encode())
            self._fd = fd
            return self
        raise OutputError(f"{self.option} {self.directory}: could not take the lock "
                          f"{self.file}")  # pragma: no cover - a hundred races in a row

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.file.unlink()  # unlinked while still locked: see the class docstring
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> Self:
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def created_directory(path: Path) -> Callable[[], None]:
    """Create the directory ``path`` (its parent exists); return a function that removes it
    again if it holds nothing but a lock file (a run that failed before writing anything)."""
    try:
        path.mkdir()
    except FileExistsError:
        return lambda: None

    def undo() -> None:
        if _is_empty_dir(path):
            with contextlib.suppress(OSError):
                (path / LOCK_NAME).unlink(missing_ok=True)
                path.rmdir()
    return undo
