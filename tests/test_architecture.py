"""The floors: cms <- content <- approvals <- journeys <- delivery <- analytics | orchestration
<- demo.

Imports only point down (a lower floor never imports a higher one, not even inside a
function). The contract lives in pyproject.toml ([tool.importlinter]); import-linter checks
every import, direct or through a chain of modules.
"""

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from django.apps import apps

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contract() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def lint(config: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def test_no_module_imports_from_a_higher_floor():
    result = lint(ROOT / "pyproject.toml", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_every_project_app_is_on_a_floor():
    """A new app must be placed on a floor, or the contract would not see it."""
    project_apps = {config.name.split(".")[0] for config in apps.get_app_configs()
                    if Path(config.path).resolve().parent == ROOT}
    floors = contract()["contracts"][0]["layers"]
    packages = [name.strip() for floor in reversed(floors) for name in floor.split("|")]
    assert project_apps | {"cms"} == set(packages)
    assert contract()["root_packages"] == packages


def test_the_contract_catches_an_upward_import(tmp_path):
    """The same contract over a two-floor copy with one upward import (inside a function,
    the easiest to miss) is broken: the check can fail."""
    for package, body in {
        "low": "def helper():\n    from high import views\n    return views\n",
        "high": "from low import helper\n",
    }.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "views.py").write_text(body)
    config = tmp_path / "contract.toml"
    config.write_text(textwrap.dedent("""
        [tool.importlinter]
        root_packages = ["low", "high"]
        [[tool.importlinter.contracts]]
        name = "floors"
        type = "layers"
        layers = ["high", "low"]
    """))
    result = lint(config, tmp_path)
    assert result.returncode != 0
    assert "low.views -> high.views" in result.stdout


def test_the_assembly_package_keeps_short_modules():
    """journeys/assembly/ is split by job; a module past 300 lines holds two jobs."""
    long = {path.name: n for path in (ROOT / "journeys" / "assembly").glob("*.py")
            if (n := len(path.read_text().splitlines())) > 300}
    assert long == {}
