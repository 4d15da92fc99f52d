"""The compiled discrete-event engine: threads, writers, mmap_lock, VMA locks, folios, storage.

numba's on-disk cache (``cache=True``) is keyed by each function's own source file, not by the
functions it calls, so an edit to ``rwsem.py`` would leave a stale compiled ``engine.loop`` behind.
On import we hash every source file of the engine and drop the cache when the hash changed.
"""

from pathlib import Path

from ..numba_cache import invalidate_stale_cache

_HERE = Path(__file__).parent
# the sampler takes the laws' parameters from their one compiled copy in laws.py
invalidate_stale_cache(_HERE, [_HERE.parent / "laws.py"], "engine-sources.sha256")
