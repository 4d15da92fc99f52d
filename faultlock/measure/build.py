"""Build the C measurement harness (``harness.c``, shipped as package data) with the system
compiler.

The binary is cached under ``$FAULTLOCK_CACHE`` or ``$XDG_CACHE_HOME/faultlock`` (default
``~/.cache/faultlock``), keyed by a digest of the source, the compiler and its flags, so a changed
source is rebuilt and an unchanged one is built once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

__all__ = ["HarnessBuildError", "harness_source", "find_compiler", "cache_dir", "build_harness"]

CFLAGS = ("-O2", "-pthread", "-Wall", "-std=gnu11")


class HarnessBuildError(RuntimeError):
    """No C compiler, or the harness did not compile."""


def harness_source() -> str:
    """The C source of the harness."""
    return resources.files("faultlock.measure").joinpath("harness.c").read_text()


def find_compiler(cc: str | None = None) -> str:
    """The C compiler to use: ``cc``, else ``$CC``, else ``cc``, ``gcc`` or ``clang`` on PATH.

    Raises
    ------
    HarnessBuildError
        If none is found, with what to install.
    """
    candidates = [cc] if cc else [os.environ.get("CC"), "cc", "gcc", "clang"]
    for name in filter(None, candidates):
        path = shutil.which(name)
        if path:
            return path
    raise HarnessBuildError(
        "faultlock measure needs a C compiler to build its harness and found none "
        f"(tried {', '.join(filter(None, candidates))}); install one (e.g. apt-get install gcc) or "
        "set CC")


def cache_dir() -> Path:
    """Directory that holds built harness binaries."""
    root = os.environ.get("FAULTLOCK_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "faultlock"


def build_harness(*, cc: str | None = None, directory: str | os.PathLike | None = None,
                  force: bool = False) -> Path:
    """Compile the harness if needed and return the path of the executable.

    Parameters
    ----------
    cc : str, optional
        Compiler (default: ``$CC``, then ``cc``, ``gcc``, ``clang``).
    directory : path, optional
        Where to keep the binary (default :func:`cache_dir`).
    force : bool
        Rebuild even if a binary for this source and compiler exists.

    Raises
    ------
    HarnessBuildError
        No compiler, not Linux, or a compile error (its message included).
    """
    if os.uname().sysname != "Linux":
        raise HarnessBuildError(f"the harness measures Linux page faults; this is "
                                f"{os.uname().sysname}")
    compiler = find_compiler(cc)
    source = harness_source()
    key = hashlib.sha256("\0".join([source, compiler, *CFLAGS]).encode()).hexdigest()[:16]
    out_dir = Path(directory) if directory is not None else cache_dir()
    binary = out_dir / f"faultlock-harness-{key}"
    if binary.exists() and os.access(binary, os.X_OK) and not force:
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        src = Path(tmp) / "harness.c"
        src.write_text(source)
        tmp_bin = Path(tmp) / "harness"
        proc = subprocess.run([compiler, *CFLAGS, "-o", str(tmp_bin), str(src)],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise HarnessBuildError(f"{compiler} failed to build the harness:\n"
                                    f"{proc.stderr[-4000:]}")
        os.replace(tmp_bin, binary)       # atomic: concurrent builders never see half a file
    return binary
