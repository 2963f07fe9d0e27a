"""The README's fresh-machine commands are the ones CI runs."""

import re

from tests.conftest import REPO


def _commands():
    text = (REPO / "README.md").read_text()
    return re.findall(r"```bash\n(python3 -m venv[^\n]*)\n```", text)


def test_readme_shows_run_and_test_commands():
    run, test = _commands()[:2]
    assert run.endswith("snakemake --cores 2")
    assert test.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    test = _commands()[1]
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines
