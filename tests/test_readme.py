"""The README says what the code does: its two commands, every parameter and every preset."""

import re
from pathlib import Path

from faultlock import POLICIES, Scenario

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_the_two_commands_install_and_run():
    commands = re.findall(r"```sh\n(python3 -m pip install [^\n]+)\n```", README)
    assert len(commands) == 2
    main_job, tests = commands
    assert "faultlock " in main_job
    assert "pytest" in tests and "[test]" in tests


def test_the_ci_script_runs_the_readme_test_command():
    """CI runs the README's test command as the README writes it, then ruff."""
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    tests = re.findall(r"```sh\n(python3 -m pip install [^\n]+)\n```", README)[1]
    commands = [line.split(" || ")[0].strip() for line in ci.splitlines()
                if not line.lstrip().startswith("#")]
    assert tests in commands, tests
    assert "python3 -m ruff check ." in commands


def test_every_parameter_policy_and_preset_is_documented():
    for name in Scenario.FIELDS:
        assert f"| `{name}` |" in README, name
    for policy in POLICIES:
        assert f"`{policy}`" in README, policy
    for preset in Scenario.presets():
        assert f"`{preset}`" in README, preset
