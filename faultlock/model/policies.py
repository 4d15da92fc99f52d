"""The policies for a fault that must wait for a folio under read (``MODEL.md``, kernel.md §6).

Each policy is a handful of switches that both solvers read:

``use_vma_lock``
    faults try the per-VMA lock first (6.4+); the legacy policies take ``mmap_lock`` only.
``drop_on_vma`` / ``drop_on_mmap``
    a first (not TRIED) attempt under that lock drops it to wait for the folio and returns
    ``VM_FAULT_RETRY`` (``maybe_unlock_mmap_for_io``); otherwise it waits holding the lock.
``retry_on_vma``
    after a RETRY from the VMA lock the retry takes the VMA lock again (``goto retry_vma``) instead
    of ``mmap_lock``.
``uptodate_wait``
    a folio that is uptodate but locked (someone installing its PTE) is waited for in place, with
    the fault lock held, and mapped without a retry (v2 patches 4-5).
"""

from dataclasses import dataclass

from .arguments import ArgumentError


@dataclass(frozen=True)
class Policy:
    name: str
    use_vma_lock: bool
    drop_on_vma: bool
    drop_on_mmap: bool
    retry_on_vma: bool
    uptodate_wait: bool
    summary: str


_TABLE = (
    Policy("legacy_hold", False, False, False, False, False,
           "no per-VMA locks; hold mmap_lock across the read (Linux before 2.6.36)"),
    Policy("legacy_retry", False, False, True, False, False,
           "no per-VMA locks; drop mmap_lock for the read, retry under it (2.6.36 to 6.3)"),
    Policy("mainline", True, True, True, False, False,
           "drop the VMA lock for the read, retry under mmap_lock (today's kernel)"),
    Policy("mainline_uptodate", True, True, True, False, True,
           "mainline plus waiting in place for an uptodate folio (derived)"),
    Policy("vma_retry", True, True, True, True, False,
           "retry under the VMA lock; mmap_lock only if that fails (RFC v1, v2 1-2)"),
    Policy("vma_retry_uptodate", True, True, True, True, True,
           "vma_retry plus waiting in place for an uptodate folio (v2, Apr 2026)"),
    # M. Wilcox's proposal concerns the VMA-lock path; a fallback to mmap_lock (VMA write-locked
    # or draining) keeps mainline's behaviour there.
    Policy("vma_wait", True, False, True, False, False,
           "never drop the VMA lock: wait for the read holding it (M. Wilcox)"),
)

POLICY_TABLE = {p.name: p for p in _TABLE}
POLICIES = tuple(p.name for p in _TABLE)


def get_policy(name: str) -> Policy:
    try:
        return POLICY_TABLE[name]
    except (KeyError, TypeError):
        raise ArgumentError(f"policy={name!r} is not allowed: one of {', '.join(POLICIES)}"
                            ) from None


def check_policies(policies) -> tuple[str, ...]:
    """Validate a policy name or a sequence of them; return a tuple in the order given.

    Raises :class:`~faultlock.model.arguments.ArgumentError` (a ValueError) naming the bad value
    and the allowed policies."""
    from .arguments import check_policies as check
    return check(policies)
