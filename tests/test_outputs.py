"""Outputs: one check for every command's ``-o`` (before any work), writes renamed into place.

Every refusal is checked the way a user meets it: the command, called in-process, exits with
status 2 and prints one line naming the option, the path and what is allowed; the computation
is never reached (its function is replaced by one that fails the test); and what was at the path
is unchanged, byte for byte.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
import xarray as xr

import faultlock
from faultlock.cli import main
from faultlock.outputs import (
    DIRECTORY,
    LOCK_NAME,
    DirectoryLock,
    OutputError,
    check_output,
    replacing,
    write_dataset,
    write_text,
)
from faultlock.sweeps import run_sweep, show

# The analytic model over 4 cells: a real sweep store in a few seconds.
SPEC = """
description = "outputs test grid"
method = "analytic"
policies = ["mainline", "vma_retry"]
seed = 3

[base]
preset = "virtio_2cpu"
writer_rate = "300/s"
reclaim = "hazard"
reclaim_rate_cached = "200/s"

[grid]
threads = [1, 4]
io_latency = ["100us", "2ms"]
"""

WHATIF = ["whatif", "--method", "analytic", "--policies", "mainline"]


def files(path: Path) -> dict[str, str]:
    """SHA-256 of a file, or of every file of a directory."""
    if path.is_file():
        return {"": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse --help and friends
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(result: tuple[int, str, str], *fragments: str) -> str:
    code, _, err = result
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, (code, err)
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("outputs")
    spec = root / "outputs.toml"
    spec.write_text(SPEC)
    store = root / "finished.zarr"
    run_sweep(spec, store, workers=0, progress=False)
    return store


@pytest.fixture
def readonly_dir(tmp_path) -> Path:
    """A directory this process cannot create files in: a 0555 directory, or (as root, whom
    modes do not stop) a kernel file system that refuses new files."""
    if os.geteuid() != 0:
        path = tmp_path / "readonly"
        path.mkdir()
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    for candidate in ("/sys", "/proc"):
        try:
            with tempfile.TemporaryFile(dir=candidate):
                pass
        except OSError:
            yield Path(candidate)
            return
    pytest.skip("running as root with no directory that refuses new files")


@pytest.fixture
def no_computation(monkeypatch):
    """Every solver entry point the commands reach fails the test: checks come first."""
    def fail(*args, **kwargs):
        raise AssertionError("computed before checking the output")
    monkeypatch.setattr(faultlock, "predict", fail)
    monkeypatch.setattr(faultlock, "simulate", fail)
    for module, name in [("faultlock.model.validation", "validate"),
                         ("faultlock.measure.run", "measure"),
                         ("faultlock.measure.calibrate", "calibrate"),
                         ("faultlock.measure.compare", "compare"),
                         ("faultlock.measure.douyin", "fit_douyin"),
                         ("faultlock.paper.build", "build_paper")]:
        monkeypatch.setattr(importlib.import_module(module), name, fail)


# ---- the probes of issue 10 -------------------------------------------------------------------
def test_whatif_does_not_wipe_a_sweep_store(sweep_store, tmp_path, capsys, no_computation):
    before = files(sweep_store)
    assert_refused(cli(WHATIF + ["-o", str(sweep_store)], capsys),
                   f"-o/--output {sweep_store}: exists; allowed: --force to replace it")
    assert files(sweep_store) == before
    assert "status: complete" in show(sweep_store)


def test_whatif_force_replaces_a_zarr_store_whole(sweep_store, tmp_path, capsys):
    target = tmp_path / "replaced.zarr"
    shutil.copytree(sweep_store, target)
    code, _, err = cli(WHATIF + ["-o", str(target), "--force"], capsys)
    assert code == 0, err
    ds = xr.open_zarr(target)
    assert list(ds.policy.values) == ["mainline"] and "fault_latency_mean" in ds
    assert not (target / "analytic").exists()  # nothing of the old store is left inside
    assert sorted(p.name for p in tmp_path.iterdir()) == ["replaced.zarr"]  # no temporaries


@pytest.mark.parametrize("make, name, fragments", [
    (None, "missing/x.nc", ["does not exist", "faultlock creates no parent directories"]),
    ("file", "parent/x.nc", ["is not a directory"]),
    (None, "x.txt", ["x.txt is not allowed: a path ending in .nc (a netCDF file) or .zarr"]),
    ("file", "x.nc", ["exists; allowed: --force to replace it, or a new path"]),
    ("dir", "x.nc", ["exists and is not a file"]),
    ("file", "x.zarr", ["exists and is not a directory"]),
    ("notes", "x.zarr", ["exists; allowed: --force"]),
])
def test_whatif_bad_outputs(tmp_path, capsys, no_computation, make, name, fragments):
    path = tmp_path / name
    if make == "file":
        path.parent.mkdir(exist_ok=True)
        if name.startswith("parent"):
            path.parent.rmdir()
            path.parent.write_text("a file")
        else:
            path.write_text("mine")
    elif make == "dir":
        path.mkdir()
        (path / "keep").write_text("mine")
    elif make == "notes":
        path.mkdir()
        (path / "notes.txt").write_text("mine")
    before = {p.name: files(p) for p in tmp_path.iterdir()}
    assert_refused(cli(WHATIF + ["-o", str(path)], capsys), "-o/--output", *fragments)
    assert {p.name: files(p) for p in tmp_path.iterdir()} == before


def test_force_never_deletes_a_directory_that_is_not_a_zarr_store(tmp_path, capsys,
                                                                    no_computation):
    path = tmp_path / "x.zarr"
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    assert_refused(cli(WHATIF + ["-o", str(path), "--force"], capsys),
                   "is a directory but not a zarr store")
    assert (path / "notes.txt").read_text() == "mine"


def test_readonly_directories_are_refused_before_any_work(readonly_dir, tmp_path, capsys,
                                                          no_computation):
    for argv, option in [
            (WHATIF + ["-o", str(readonly_dir / "w.nc")], "-o/--output"),
            (["sweep", "smoke", "-o", str(readonly_dir / "s.zarr")], "-o/--output"),
            (["validate", "-o", str(readonly_dir / "v.nc")], "-o/--output"),
            (["figures", str(tmp_path), "-o", str(readonly_dir / "figs")],
             "faultlock figures: -o"),
            (["compare", "m.nc", "-o", str(readonly_dir / "c")], "faultlock compare: -o"),
            (["calibrate", "--douyin", "-o", str(readonly_dir / "c.json")],
             "faultlock calibrate: -o"),
            (["measure", "-o", str(readonly_dir / "m.nc")], "faultlock measure: -o"),
            (["paper", "-o", str(readonly_dir / "build")], "faultlock paper: -o")]:
        assert_refused(cli(argv, capsys), option, f"cannot write in {readonly_dir}",
                       "allowed: a path in a directory this user can write")


def test_sweep_outputs(sweep_store, tmp_path, capsys, no_computation):
    spec = str(sweep_store.parent / "outputs.toml")
    missing = tmp_path / "nonexistent" / "dir" / "x.zarr"
    assert_refused(cli(["sweep", spec, "-o", str(missing)], capsys), "does not exist")
    assert not (tmp_path / "nonexistent").exists()  # no parents created
    assert_refused(cli(["sweep", spec, "-o", str(tmp_path / "s.nc")], capsys),
                   "s.nc is not allowed: a path ending in .zarr")
    before = files(sweep_store)
    # the same spec again: complete, so nothing is computed and the && chain goes on (issue 13)
    code, _, err = cli(["sweep", spec, "-o", str(sweep_store)], capsys)
    assert code == 0, err
    assert f"{sweep_store} is complete (" in err and "nothing to do (--force to recompute)" in err
    other = sweep_store.parent / "other.toml"   # not in tmp_path: it must stay empty
    other.write_text(SPEC.replace("seed = 3", "seed = 4"))
    assert_refused(cli(["sweep", str(other), "-o", str(sweep_store)], capsys),
                   "made by a different spec", "allowed: --force")
    other.unlink()
    assert_refused(cli(["sweep", spec, "-o", str(sweep_store), "--resume", "--force"], capsys),
                   "give one of them")
    with DirectoryLock(sweep_store):  # another process writing it: even --force is refused
        assert_refused(cli(WHATIF + ["-o", str(sweep_store), "--force"], capsys),
                       "is being written by another faultlock process")
        assert "being written by pid" in show(sweep_store)
    assert files(sweep_store) == before
    assert os.listdir(tmp_path) == []


def test_sweep_force_starts_again(sweep_store, tmp_path):
    store = tmp_path / "again.zarr"
    shutil.copytree(sweep_store, store)
    spec = sweep_store.parent / "outputs.toml"
    run_sweep(spec, store, workers=0, progress=False, force=True)
    assert "status: complete: 4/4 cells" in show(store)
    assert len(xr.open_datatree(str(store), engine="zarr").attrs["run_log"]) == 1  # a new store


def test_figures_outputs(sweep_store, tmp_path, capsys):
    a_file = tmp_path / "afile"
    a_file.write_text("mine")
    assert_refused(cli(["figures", str(sweep_store), "-o", str(a_file)], capsys),
                   "faultlock figures: -o", "exists and is not a directory")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert_refused(cli(["figures", str(sweep_store), "-o", str(busy)], capsys),
                   "exists and is not empty; allowed: --force to write into it")
    # a zarr store whose name ends in .nc (what `sweep -o s.nc` used to write) is read as one
    named_nc = tmp_path / "store.nc"
    shutil.copytree(sweep_store, named_nc)
    code, _, err = cli(["figures", str(named_nc), "-o", str(busy), "--force", "--only",
                          "fig1_winners_jank", "--format", "png"], capsys)
    assert code == 0, err
    assert (busy / "notes.txt").read_text() == "mine"  # --force writes into it, deletes nothing
    assert any(p.name.startswith("fig1_winners_jank") and p.suffix == ".png"
               for p in busy.iterdir())
    assert not [p for p in busy.iterdir() if p.name.startswith(".")]  # no temporaries


def test_paper_outputs(tmp_path, capsys, no_computation):
    a_file = tmp_path / "afile"
    a_file.write_text("mine")
    assert_refused(cli(["paper", "-o", str(a_file)], capsys), "exists and is not a directory")
    assert_refused(cli(["paper", "-o", str(tmp_path)], capsys), "exists and is not empty")


# ---- the check and the writer ------------------------------------------------------------------
def test_check_output_rules(tmp_path):
    empty = tmp_path / "empty.zarr"
    empty.mkdir()
    assert check_output(empty, (".zarr",)) == empty  # an empty directory is a new output
    (empty / LOCK_NAME).write_text("")  # a lock file left by a killed writer: still empty
    assert check_output(empty, (".zarr",)) == empty
    existing = tmp_path / "d.json"
    existing.write_text("{}")
    assert check_output(existing, (".json",), force=True) == existing
    assert check_output(existing, (".json",), reuse=True) == existing
    with pytest.raises(OutputError, match=r"--out .*d.json: exists; allowed: --resume, --force"):
        check_output(existing, (".json",), option="--out", reuse_hint="--resume")
    assert check_output(tmp_path / "figs", DIRECTORY) == tmp_path / "figs"
    with pytest.raises(OutputError, match="a file system path"):
        check_output("", (".nc",))


def test_a_failed_write_leaves_the_old_output(tmp_path):
    path = write_text(tmp_path / "a.json", "old")
    with pytest.raises(RuntimeError), replacing(path) as temporary:
        temporary.write_text("half")
        raise RuntimeError("the solver failed")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.json"]


def test_a_killed_write_leaves_the_old_output_and_its_temporary_is_cleaned(tmp_path):
    path = write_text(tmp_path / "a.json", "old")
    pid = os.fork()
    if pid == 0:
        try:
            with replacing(path) as temporary:
                temporary.write_text("half")
                os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)
    assert path.read_text() == "old"
    leftovers = [p for p in os.listdir(tmp_path) if p != "a.json"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".a-faultlock-tmp-")
    write_text(path, "new")  # the next write to the same name removes the dead one's temporary
    assert os.listdir(tmp_path) == ["a.json"] and path.read_text() == "new"


def test_write_dataset_replaces_stores_and_files(tmp_path):
    for name in ("d.nc", "d.zarr", "d.json"):
        path = tmp_path / name
        for value in (1.0, 2.0):
            write_dataset(xr.Dataset({"x": ("i", [value, value])}), path)
            if name.endswith(".json"):
                assert '"data": [2.0, 2.0]' in path.read_text() or value == 1.0
            else:
                with xr.open_dataset(path, engine="zarr" if name.endswith(".zarr") else None
                                     ) as ds:
                    assert float(ds.x[0]) == value
    assert sorted(os.listdir(tmp_path)) == ["d.json", "d.nc", "d.zarr"]
    with pytest.raises(OutputError, match="d.csv is not allowed"):
        write_dataset(xr.Dataset(), tmp_path / "d.csv")
