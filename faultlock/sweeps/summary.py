"""``show(store)``: a plain-text summary of a sweep store.

Dimensions, cells done per method, and for each objective the share of the computed grid that
each policy wins (with the undecided share: cells where Monte Carlo intervals overlap).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..outputs import LOCK_NAME, lock_holder
from .spec import SweepSpec
from .store import RUN_LOG, StoreError, SweepStore, open_sweep
from .winners import MEANINGS, winner_maps, winner_shares

__all__ = ["show"]


def _dims_text(ds: xr.Dataset, axes: list[str]) -> str:
    parts = []
    for axis in axes:
        values = ds[axis].values
        if values.dtype.kind in "iuf" and len(values) > 1:
            units = ds[axis].attrs.get("units", "")
            units = "" if units in ("", "1") else f" {units}"
            parts.append(f"{axis}={len(values)} [{values[0]:g}..{values[-1]:g}{units}]")
        else:
            parts.append(f"{axis}={len(values)} [{', '.join(map(str, values))}]")
    return " x ".join(parts)


def show(store: str | Path) -> str:
    """A summary of the sweep store at ``store`` (raises StoreError if it is not one)."""
    sweep_store = SweepStore(store)
    attrs = sweep_store.attrs()
    if attrs is None and Path(store).is_dir() and all(
            p.name == LOCK_NAME or p.name.endswith(".partial") for p in Path(store).iterdir()):
        holder = lock_holder(store)
        if holder:  # a first run still writing its first file is not a stopped one
            return f"sweep store {Path(store)}\n  status: being created by {holder}\n"
        raise StoreError(f"{store}: an unfinished sweep store: its first run stopped before "
                         "writing anything; allowed: run the sweep again with --resume")
    if attrs is None or "faultlock_sweep" not in attrs:
        raise StoreError(f"{store}: not a faultlock sweep store")
    lines = [f"sweep {attrs.get('spec_name')!r}: {attrs.get('description', '')}".rstrip(": "),
             (f"  store {Path(store)}; spec {attrs.get('spec_source')} "
              f"(fingerprint {str(attrs.get('spec_fingerprint'))[:12]}); "
              f"seed entropy {attrs.get('seed_entropy')}"),
             (f"  faultlock {attrs.get('faultlock_version')}, git "
              f"{str(attrs.get('git_revision'))[:12]}"
              f"{' (dirty)' if attrs.get('git_dirty') else ''}; "
              f"{len(attrs.get(RUN_LOG, []))} run(s)")]
    holder = lock_holder(store)
    resume = (f"faultlock sweep {attrs.get('spec_source')} -o {store} --resume")
    if not attrs.get("template_complete"):
        lines.append("  status: " + (f"being created by {holder}" if holder else
                                     f"INCOMPLETE: interrupted while creating the store; "
                                     f"finish it with: {resume}"))
        return "\n".join(lines) + "\n"
    spec = SweepSpec.from_text(attrs["spec_text"], attrs.get("spec_source", "<store>"),
                               attrs.get("spec_name"))
    try:
        tree = open_sweep(store)
        _check_groups(tree, attrs)
    except Exception as exc:  # noqa: BLE001 - anything unreadable is a damaged store
        what = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
        raise StoreError(f"{store}: a damaged sweep store ({what.splitlines()[0]}); allowed: "
                         f"a complete or resumable store; try: {resume}") from None
    axes = [a.name for a in spec.axes]
    policies = [str(p) for p in attrs["policies"]]
    cells_done = cells_total = 0
    status_at = len(lines)
    for method in attrs["methods"]:
        ds = tree[method].to_dataset()
        done = ds["done"].values
        cells_done += int(done.sum())
        cells_total += done.size
        group = ds.attrs
        lines.append(f"{method} ({group.get('solver')}): {int(done.sum())}/{done.size} cells "
                     f"done ({100 * done.mean():.0f}%); tasks of {tuple(group.get('chunk_shape'))} "
                     f"cells, zarr chunks of {tuple(group.get('block_shape'))}")
        lines.append(f"  dims: {_dims_text(ds, axes)}; policy={len(policies)}")
        if method == "mc":
            run = group.get("run_lengths", {})
            lines.append(f"  run length: {run.get('operations')} operations x "
                         f"{run.get('replications')} replication(s), {run.get('batches')} "
                         f"batches, warm-up {run.get('warmup')}")
            if spec.mc.selection is not None and "batches" in ds and done.any():
                spent = ds["batches"].sum("policy").values[done]
                lines.append(
                    f"  ranking and selection (Kim & Nelson 2001, ties within "
                    f"{100 * spec.tie_tolerance:g} %): {100 * spec.mc.selection.confidence:g} % "
                    f"confidence; the first {run.get('batches')} batches x policies, then only "
                    f"the policies in contention; batches per cell: median "
                    f"{np.median(spent):.0f}, max {spent.max():.0f} (budget "
                    f"{spec.mc.selection.budget} a cell and objective)")
        if not done.any():
            continue
        maps = ds if any(f"winner_{o.name}" in ds for o in spec.objectives) else \
            winner_maps(ds.load(), spec.objectives, done=ds["done"], rtol=spec.tie_tolerance)
        for objective in spec.objectives:
            name = f"winner_{objective.name}"
            if name not in maps:
                lines.append(f"  {objective.name}: n/a ({method} does not give "
                             f"{', '.join(m for m in objective.metrics if m not in ds)})")
                continue
            shares = winner_shares(maps[name], policies)
            shown = [f"{label} {100 * share:.1f}%" for label, share in
                     sorted(shares.items(), key=lambda kv: -kv[1]) if share > 0]
            lines.append(f"  {objective.name} ({objective.describe()}):")
            lines.append("      " + ("  ".join(shown) if shown else "no computed cells"))
            agree = ds.get(f"agreement_{objective.name}")
            if agree is not None:
                codes = np.asarray(agree.values)
                comparable = codes >= 0
                if comparable.any():
                    lines.append(
                        f"      analytic leader among the Monte Carlo's answers in "
                        f"{100 * (codes == 1).sum() / comparable.sum():.1f}% of the "
                        f"{int(comparable.sum())} cells both answer; disagree in "
                        f"{int((codes == 0).sum())}")
    if holder:
        status = f"being written by {holder}: {cells_done}/{cells_total} cells done so far"
    elif cells_done < cells_total:
        status = (f"INCOMPLETE: {cells_done}/{cells_total} cells done (interrupted, or some "
                  f"cells failed); finish it with: {resume}")
    else:
        status = f"complete: {cells_total}/{cells_total} cells"
    lines.insert(status_at, f"  status: {status}")
    lines.append("words: a policy name: " + MEANINGS["winner"])
    lines += [f"  {word.replace('_', ' ')}: {text}" for word, text in MEANINGS.items()
              if word != "winner"]
    return "\n".join(lines) + "\n"


def _check_groups(tree: xr.DataTree, attrs: dict) -> None:
    """Every method's group is there with its ``done`` marker, and a group whose schema is
    complete has every metric variable it lists (else the store is damaged)."""
    for method in attrs.get("methods", []):
        if method not in tree.children:
            raise StoreError(f"the {method!r} group is missing")
        ds = tree[method].to_dataset()
        if "done" not in ds:
            raise StoreError(f"the {method!r} group has no 'done' marker")
        if ds.attrs.get("schema_complete"):
            missing = sorted(set(ds.attrs.get("metric_variables", {})) - set(ds.data_vars))
            if missing:
                raise StoreError(f"the {method!r} group lacks {', '.join(missing[:5])}")
        elif ds["done"].values.any():
            raise StoreError(f"the {method!r} group has cells marked done but no metric "
                             "variables")

