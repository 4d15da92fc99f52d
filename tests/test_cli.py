"""The faultlock command: output of whatif, and one-line errors with exit status 2."""

import subprocess
import sys

import pytest

from faultlock import POLICIES
from faultlock.cli import format_quantity, main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "faultlock.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_whatif_prints_a_row_per_policy(capsys):
    assert main(["whatif", "--preset", "virtio_2cpu", "--threads", "4", "--operations", "2000",
                 "--reclaim-rate-mapped", "50", "--reclaim-rate-cached", "50",
                 "--writer-rate", "200/s"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for policy in POLICIES:
        assert any(line.startswith(policy + " ") for line in lines), policy
    assert "fault p99" in out and "±" in out


def test_whatif_subset_of_policies(capsys):
    assert main(["whatif", "--threads", "2", "--cpus", "0", "--operations", "1000",
                 "--reclaim-rate-mapped", "100", "--policies", "mainline,vma_wait"]) == 0
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
def test_bad_input_is_one_line_and_status_2(args, fragment):
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


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
    out = capsys.readouterr().out
    assert "the workloads grid" in out and "fault_latency_mean" in out
    assert out_file.exists()
