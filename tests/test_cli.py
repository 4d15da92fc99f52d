"""The faultlock command: output of whatif, and one-line errors with exit status 2.

The commands run in this process (the ``run_cli`` fixture of conftest.py calls
``faultlock.cli.main``); one test runs the installed ``faultlock`` console script itself.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faultlock import POLICIES
from faultlock.cli import format_quantity, main


def test_whatif_prints_a_row_per_policy(capsys):
    assert main(["whatif", "--preset", "virtio_2cpu", "--threads", "4", "--operations", "2000",
                 "--reclaim", "hazard", "--reclaim-rate-mapped", "50",
                 "--reclaim-rate-cached", "50",
                 "--writer-rate", "200/s"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for policy in POLICIES:
        assert any(line.startswith(policy + " ") for line in lines), policy
    assert "fault p99" in out and "±" in out


def test_whatif_subset_of_policies(capsys):
    assert main(["whatif", "--threads", "2", "--cpus", "0", "--operations", "1000",
                 "--reclaim", "hazard", "--reclaim-rate-mapped", "100",
                 "--policies", "mainline,vma_wait"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.split(" ")[0] in POLICIES]
    assert [r.split()[0] for r in rows] == ["mainline", "vma_wait"]


@pytest.mark.parametrize("args, fragment", [
    (["whatif", "--threads", "-3"], "threads=-3"),
    (["whatif", "--io-latency", "2parsecs"], "io_latency='2parsecs'"),
    (["whatif", "--swap-share", "1.5"], "swap_share=1.5"),
    (["whatif", "--preset", "nope"], "nope"),
    (["whatif", "--policies", "mainline,foo"], "policy='foo'"),
    (["whatif", "--writer-spin", "maybe"], "writer_spin='maybe'"),
    (["whatif", "--bogus", "1"], "unrecognized arguments"),
    (["frobnicate"], "invalid choice"),
    (["whatif", "-o", "result.txt"], "-o/--output result.txt is not allowed"),
    (["validate", "--grid", "nope"], "invalid choice: 'nope'"),
    (["validate", "--grid", "workloads", "--preset", "fork_heavy"], "one of them"),
    (["whatif", "--access-pattern", "group_walk", "--readaround-pages", "8", "--method",
      "analytic"], "readaround_pages=8 is not allowed by the analytic model"),
])
def test_bad_input_is_one_line_and_status_2(run_cli, args, fragment):
    code, out, err = run_cli(*args)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0]
    assert "Traceback" not in err


def _console_script() -> str | None:
    """The ``faultlock`` script pip installed: beside this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name("faultlock")
    return str(beside) if beside.exists() else shutil.which("faultlock")


def test_the_installed_console_script():
    """The entry point of pyproject.toml, run as a user runs it: help lists the commands, bad
    input is one line on stderr with status 2 (no traceback), in a fresh process."""
    script = _console_script()
    if script is None:
        pytest.skip("the faultlock console script is not installed (pip install -e .)")
    help_run = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert help_run.returncode == 0, help_run.stderr
    for command in ("whatif", "validate", "sweep", "show", "figures", "paper", "measure"):
        assert command in help_run.stdout, command
    bad = subprocess.run([script, "whatif", "--threads", "-3"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "threads=-3" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_format_quantity_units():
    assert format_quantity(0.00215, "s") == "2.15ms"
    assert format_quantity(3.2e-6, "s") == "3.2µs"
    assert format_quantity(12500.0, "1/s") == "12.5k/s"
    assert format_quantity(0.015, "%") == "1.5%"
    assert format_quantity(float("inf"), "s") == "inf"


def test_validate_on_the_workloads_grid(capsys, tmp_path):
    out_file = tmp_path / "v.nc"
    assert main(["validate", "--grid", "workloads", "--policies", "mainline", "--operations",
                 "2000", "-o", str(out_file)]) == 0
    out, err = capsys.readouterr()
    assert "the workloads grid" in out and "fault_latency_mean" in out
    assert out_file.exists()
    # progress on stderr: a line before the analytic model, then the Monte Carlo's bar (not a
    # terminal: its first line at once, its last at the end), counting the grid's cells
    lines = err.splitlines()
    assert lines[0].startswith("validate: the analytic model, then the Monte Carlo (2000 ")
    cells = int(lines[1].split("0/")[1].split()[0])
    assert lines[1].startswith("validate: Monte Carlo [---") and cells > 1
    assert lines[-1].startswith(f"validate: Monte Carlo [{'#' * 30}] {cells}/{cells} cells")


def test_import_and_help_load_no_solver_libraries():
    """``import faultlock`` and ``faultlock --help`` stay light (issue 13): numba, dask,
    matplotlib, scipy.stats and sympy are imported by the commands that use them, not before.
    A fresh interpreter, since this one has imported them all."""
    code = ("import contextlib, io, sys, faultlock, faultlock.cli\n"
            "faultlock.Scenario, faultlock.POLICIES\n"
            "with contextlib.redirect_stdout(io.StringIO()) as text:\n"
            "    try:\n"
            "        faultlock.cli.main(['--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "assert 'whatif' in text.getvalue()\n"
            "heavy = ('numba', 'dask', 'distributed', 'matplotlib', 'scipy.stats', 'sympy')\n"
            "print('loaded:', *(m for m in heavy if m in sys.modules))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "loaded:", run.stdout


def test_lazy_names_are_the_real_objects():
    """The names ``faultlock`` exports on first use are the modules' own objects."""
    import faultlock
    from faultlock.model.analytic import predict
    from faultlock.model.montecarlo.simulate import simulate
    from faultlock.sweeps import run_sweep
    assert faultlock.predict is predict and faultlock.simulate is simulate
    assert faultlock.run_sweep is run_sweep
    assert set(faultlock.__all__) <= set(dir(faultlock))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        faultlock.nope  # noqa: B018
