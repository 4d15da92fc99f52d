"""Shared fixtures, and the compiled engine warmed once before the test workers start.

* ``run_cli(*args) -> (exit_code, stdout, stderr)`` runs the ``faultlock`` command in this process
  (``faultlock.cli.main``): the same parser, the same error handling and the same exit status as
  the console script, without a 1-20 s interpreter start and numba load per call.  One test
  (tests/test_cli.py) still runs the installed console script.
* The Monte Carlo engine and the analytic model's fixed point are numba functions cached on disk
  (``cache=True``).  Under pytest-xdist every worker would compile them at the same time on a
  fresh checkout (about a minute of CPU each); ``pytest_configure`` in the controller compiles
  them once (engine and fixed point side by side), so the workers only load the cache (about a
  second).  ``FAULTLOCK_TEST_NO_WARM=1`` skips this.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _is_xdist_controller(config: pytest.Config) -> bool:
    """True in the process that starts pytest-xdist workers (and only there)."""
    if hasattr(config, "workerinput"):
        return False
    numprocesses = getattr(config.option, "numprocesses", None)
    return bool(numprocesses) and getattr(config.option, "dist", "no") != "no"


#: one tiny run per group of compiled code, each in its own process so that both cores compile
WARM_UP = {
    "engine": "import faultlock\n"
              "faultlock.simulate(faultlock.Scenario(threads=2, writer_rate=50.0),\n"
              "                   policies=['mainline'], operations=200, batches=2, seed=0)\n",
    "analytic model": "import faultlock\n"
                      "faultlock.predict(faultlock.Scenario(threads=2, writer_rate=50.0),\n"
                      "                  policies=['mainline'])\n",
}


def warm_compiled_code() -> tuple[float, list[str]]:
    """Compile (or load from numba's on-disk cache) the code every test worker will run: a tiny
    Monte Carlo run and an analytic prediction with the compiled fixed point, side by side in
    two processes that import the same ``faultlock`` as this one.  Returns the seconds it took
    and the warm-ups that failed (the tests that use that code then show the error)."""
    import faultlock                              # light: the package imports on first use
    package_root = str(Path(faultlock.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    start = time.perf_counter()
    runs = {name: subprocess.Popen([sys.executable, "-c", code], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, code in WARM_UP.items()}
    failed = [name for name, run in runs.items() if run.wait() != 0]
    return time.perf_counter() - start, failed


def _cache_looks_fresh() -> bool:
    """numba's cache files of ``engine.loop`` and of the analytic model's solve loop exist and
    are newer than every source they compile (a quick look, no import of numba: if it is wrong
    the workers compile what is missing themselves, as without the warm-up)."""
    import faultlock.model.montecarlo as engine   # drops the cache if an engine source changed
    engine_dir = Path(engine.__file__).parent
    model_dir = engine_dir.parent
    analytic_dir = model_dir / "analytic"
    checks = ((engine_dir, "engine.loop-*.nbi", [*engine_dir.glob("*.py"), model_dir / "laws.py"]),
              (analytic_dir, "solve.solve_all-*.nbi",
               [*analytic_dir.glob("*.py"), *(model_dir / "formulas").glob("*.py"),
                model_dir / "laws.py"]))
    for directory, pattern, sources in checks:
        indexes = list((directory / "__pycache__").glob(pattern))
        if not indexes:
            return False
        newest_source = max(source.stat().st_mtime for source in sources)
        if min(index.stat().st_mtime for index in indexes) < newest_source:
            return False
    return True


def pytest_configure(config: pytest.Config) -> None:
    if (_is_xdist_controller(config) and not os.environ.get("FAULTLOCK_TEST_NO_WARM")
            and not _cache_looks_fresh()):
        config.stash[_WARM_KEY] = warm_compiled_code()


_WARM_KEY = pytest.StashKey[tuple[float, list[str]]]()


def pytest_report_header(config: pytest.Config) -> str | None:
    warmed = config.stash.get(_WARM_KEY, None)
    if warmed is None:
        return None
    seconds, failed = warmed
    text = f"faultlock: compiled engine and analytic model warmed in {seconds:.1f} s (numba cache)"
    if failed:
        text += f"; warm-up failed: {', '.join(failed)} (the tests using it will show why)"
    return text


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
