"""Shared fixtures, and the compiled engine warmed once before the test workers start.

* ``run_cli(*args) -> (exit_code, stdout, stderr)`` runs the ``faultlock`` command in this process
  (``faultlock.cli.main``): the same parser, the same error handling and the same exit status as
  the console script, without a 1-20 s interpreter start and numba load per call.  One test
  (tests/test_cli.py) still runs the installed console script.
* The Monte Carlo engine and the analytic model's fixed point are numba functions cached on disk
  (``cache=True``).  Under pytest-xdist every worker would compile them at the same time on a
  fresh checkout (about a minute of CPU each); ``pytest_configure`` in the controller compiles
  them once, so the workers only load the cache (about a second).
"""

from __future__ import annotations

import os
import time

import pytest


def _is_xdist_controller(config: pytest.Config) -> bool:
    """True in the process that starts pytest-xdist workers (and only there)."""
    if hasattr(config, "workerinput"):
        return False
    numprocesses = getattr(config.option, "numprocesses", None)
    return bool(numprocesses) and getattr(config.option, "dist", "no") != "no"


def warm_compiled_code() -> float:
    """Compile (or load from the on-disk cache) every numba function the suite runs: one tiny
    Monte Carlo run and one analytic prediction, compiled fixed point included.  Returns the
    seconds it took."""
    start = time.perf_counter()
    import faultlock
    scenario = faultlock.Scenario(threads=2, writer_rate=50.0)
    faultlock.simulate(scenario, policies=["mainline"], operations=200, batches=2, seed=0)
    faultlock.predict(scenario, policies=["mainline"], compiled=True)
    return time.perf_counter() - start


def pytest_configure(config: pytest.Config) -> None:
    if _is_xdist_controller(config) and not os.environ.get("FAULTLOCK_TEST_NO_WARM"):
        seconds = warm_compiled_code()
        config.stash[_WARM_KEY] = seconds


_WARM_KEY = pytest.StashKey[float]()


def pytest_report_header(config: pytest.Config) -> str | None:
    seconds = config.stash.get(_WARM_KEY, None)
    if seconds is None:
        return None
    return f"faultlock: compiled engine and fixed point warmed in {seconds:.1f} s (numba cache)"


_SHARED_SCOPES = ("session", "package", "module", "class")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the tests that share an expensive fixture (a module- or session-scoped simulation,
    sweep store or measurement) on one xdist worker (``--dist loadgroup``), so it is computed
    once; the other tests are spread one by one.  One group per module that defines such
    fixtures: a module's shared fixtures often depend on one another."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        owners = set()
        for name in item.fixturenames:
            definitions = info.name2fixturedefs.get(name)
            if not definitions:
                continue
            definition = definitions[-1]
            if definition.scope in _SHARED_SCOPES and definition.baseid:   # ours, not a plugin's
                owners.add(definition.baseid)     # the module (or conftest) defining it
        if owners:
            item.add_marker(pytest.mark.xdist_group(min(owners)))


@pytest.fixture
def run_cli(capsys):
    """Run ``faultlock ARGS...`` in this process; returns ``(exit_code, stdout, stderr)``.

    ``SystemExit`` (argparse's ``--help``, a delegated command's ``sys.exit``) becomes the exit
    code as the interpreter would make it: ``None`` is 0, an integer is itself, anything else
    is printed on stderr with status 1."""
    from faultlock.cli import main

    def run(*args) -> tuple[int, str, str]:
        capsys.readouterr()                       # drop what the test printed before
        extra_err = ""
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:
            if exit_.code is None or isinstance(exit_.code, int):
                code = exit_.code or 0
            else:
                code, extra_err = 1, f"{exit_.code}\n"
        out, err = capsys.readouterr()
        return code, out, err + extra_err

    return run
