"""The compiled discrete-event engine: threads, writers, mmap_lock, VMA locks, folios, storage.

numba's on-disk cache (``cache=True``) is keyed by each function's own source file, not by the
functions it calls, so an edit to ``rwsem.py`` would leave a stale compiled ``engine.run`` behind.
On import we hash every source file of the engine and drop the cache when the hash changed.
"""

import hashlib
from pathlib import Path


def _invalidate_stale_cache() -> None:
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for source in sorted(here.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    cache = here / "__pycache__"
    stamp = cache / "engine-sources.sha256"
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


_invalidate_stale_cache()
