"""The project's own promises: one dependency list, the README's commands, CI calling them."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += [r for r in extra if not r.startswith("energylab")]
    return {re.split(r"[<>=!\[ ]", r)[0].lower(): r for r in reqs}


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    text = (ROOT / "environment.yml").read_text().split("- pip:")[1]   # the pip section
    listed = {re.split(r"[<>=!\[ ]", line.strip()[2:])[0].lower(): line.strip()[2:]
              for line in text.splitlines() if re.match(r"\s+- [a-zA-Z]", line)}
    assert listed == pyproject_requirements()


def test_readme_shows_the_two_commands_and_ci_runs_the_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make dashboard" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_imports_are_sorted():
    """Standard library, third-party, energylab, each sorted (ruff's isort rules, pyproject's
    [tool.ruff]); `ruff check --select I --fix energylab dashboard` sorts them."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "I", "--no-cache", "energylab",
                           "dashboard"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_checkpoint_loading_unpickles_arbitrary_objects():
    for path in (ROOT / "energylab").rglob("*.py"):
        for line in path.read_text().splitlines():
            if "torch.load" + "(" in line:
                assert "weights_only=True" in line, f"{path.name}: {line.strip()}"


def test_readme_variant_table_is_the_registry(capsys):
    from energylab import cli
    assert cli.main(["variants", "--markdown"]) == 0
    table = capsys.readouterr().out
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- variants:start -->\n")[1].split("<!-- variants:end -->")[0]
    assert block == table, "README's variant table drifted: paste `energylab variants --markdown` into it"
