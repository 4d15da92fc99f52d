"""Drop numba's on-disk cache of a compiled package when any source it compiles from changed.

numba's cache (``cache=True``) is keyed by each function's own source file, not by the functions
it calls: an edit to ``rwsem.py`` would leave a stale compiled ``engine.run`` behind, and an edit
to ``laws.py`` a stale sampler.  Each compiled package calls :func:`invalidate_stale_cache` on
import with the sources it compiles from; the hash of their contents is kept beside the cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def invalidate_stale_cache(package: Path, others: Iterable[Path], stamp_name: str) -> None:
    """Remove ``package/__pycache__``'s numba files (``*.nbi``, ``*.nbc``) unless the sources
    (``package/*.py`` and ``others``) hash to the value stamped at the last removal.

    A read-only install cannot write the cache at all; numba then compiles in memory.
    """
    digest = hashlib.sha256()
    for source in [*sorted(package.glob("*.py")), *others]:
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    cache = package / "__pycache__"
    stamp = cache / stamp_name
    try:
        if stamp.read_text() == digest.hexdigest():
            return
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for stale in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            stale.unlink(missing_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:
        pass  # a read-only install: numba then compiles in memory
