"""The layout is checked, not only described: the README's module table, docstrings, sizes, the pure core."""

from __future__ import annotations

import ast
import re
import tomllib
from typing import Any, Final

import pytest

from tests.helpers import ROOT

# Product modules still over MAX_LINES while they are being split. Empty it as the splits land:
# test_the_size_allowance_names_only_modules_still_over_it fails on an entry no longer needed.
OVER_MAX_LINES_FOR_NOW: Final[frozenset[str]] = frozenset()
MAX_LINES: Final = 400

PACKAGE: Final = ROOT / "trellis_slack"
README: Final = ROOT / "README.md"
PYPROJECT: Final = ROOT / "pyproject.toml"
LAYERS: Final = ("pure core", "shells", "glue", "edges", "test servers & demo")
# A row's module cell: one module, or a few that share one job, as `path.py`, `path.py`.
MODULES_CELL: Final = r"`[\w/]+\.py`(, `[\w/]+\.py`)*"


def product_modules() -> set[str]:
    """Every module of the package, as a path below trellis_slack/ (package markers aside)."""
    return {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name not in {"__init__.py", "__main__.py"}
    }


def layout_rows() -> list[tuple[str, str]]:
    """The README's layout table as (layer, module) pairs; an empty layer cell repeats the one above."""
    text = README.read_text()
    section = text[text.index("\n## Development\n") :]
    section = section[: section.find("\n## ", 1) if "\n## " in section[1:] else len(section)]
    rows: list[tuple[str, str]] = []
    layer = ""
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 3 or cells[0] == "layer" or "---" in cells[0]:
            continue
        layer = cells[0] or layer
        assert re.fullmatch(MODULES_CELL, cells[1]), f"{cells[1]!r} is not `path.py`, `path.py`..."
        rows.extend((layer, module) for module in re.findall(r"`([\w/]+\.py)`", cells[1]))
    return rows


def modules_in(layer: str) -> set[str]:
    """The modules the README's table puts in one layer."""
    return {module for row_layer, module in layout_rows() if row_layer == layer}


def pyproject() -> dict[str, Any]:
    """The project's pyproject.toml, parsed."""
    return tomllib.loads(PYPROJECT.read_text())


def contract(contract_id: str) -> dict[str, Any]:
    """One import-linter contract from pyproject.toml, by its id."""
    contracts = pyproject()["tool"]["importlinter"]["contracts"]
    (found,) = (each for each in contracts if each.get("id") == contract_id)
    return dict(found)


def test_every_module_is_in_the_layout_table() -> None:
    """A module of the package missing from the README's layout table fails."""
    missing = product_modules() - {module for _, module in layout_rows()}
    assert not missing, f"add to the README's layout table: {sorted(missing)}"


def test_the_layout_table_names_only_modules_that_exist() -> None:
    """A module the README's layout table names that is not in the tree fails."""
    gone = {module for _, module in layout_rows()} - product_modules()
    assert not gone, f"not in the tree, drop from the README's layout table: {sorted(gone)}"


def test_each_module_is_in_one_layer_of_the_five() -> None:
    """The table lists each module once, in one of the five layers, in their order."""
    rows = layout_rows()
    modules = [module for _, module in rows]
    assert len(modules) == len(set(modules)), "a module is listed twice"
    layers = list(dict.fromkeys(layer for layer, _ in rows))
    assert layers == list(LAYERS)


def test_the_test_servers_and_demo_are_fakes_and_demo() -> None:
    """The table's last layer is exactly the fakes/ and demo/ packages, and they sit nowhere else."""
    expected = {m for m in product_modules() if m.startswith(("fakes/", "demo/"))}
    assert modules_in("test servers & demo") == expected


@pytest.mark.parametrize("module", sorted(product_modules()))
def test_each_module_opens_with_a_one_line_summary(module: str) -> None:
    """Each module has a docstring whose first line is one sentence saying its job."""
    docstring = ast.get_docstring(ast.parse((PACKAGE / module).read_text()))
    assert docstring, f"{module} has no docstring"
    summary, *rest = docstring.splitlines()
    assert summary.strip(), f"{module}: the docstring opens with a blank line"
    assert summary.rstrip().endswith((".", ".)")), f"{module}: {summary!r} is not one sentence"
    assert not rest or not rest[0].strip(), f"{module}: the summary runs onto a second line"


@pytest.mark.parametrize("module", sorted(product_modules() - OVER_MAX_LINES_FOR_NOW))
def test_no_module_is_over_the_size_limit(module: str) -> None:
    """No module of the product is over MAX_LINES lines (apart from the ones being split)."""
    lines = len((PACKAGE / module).read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines: split it by job"


def test_the_size_allowance_names_only_modules_still_over_it() -> None:
    """Each entry of OVER_MAX_LINES_FOR_NOW is a module still over MAX_LINES (drop the others)."""
    done = {
        module
        for module in OVER_MAX_LINES_FOR_NOW
        if not (PACKAGE / module).exists()
        or len((PACKAGE / module).read_text().splitlines()) <= MAX_LINES
    }
    assert not done, f"split or gone, remove from OVER_MAX_LINES_FOR_NOW: {sorted(done)}"


def test_the_pure_core_is_the_one_import_linter_keeps_pure() -> None:
    """The README's pure core is exactly the source modules of the `pure-core` import contract."""
    source = {
        name.removeprefix("trellis_slack.").replace(".", "/") + ".py"
        for name in contract("pure-core")["source_modules"]
    }
    assert source == modules_in("pure core")


def test_ruff_bans_io_in_the_same_pure_core() -> None:
    """Ruff's banned-api holds in exactly the README's pure core, and bans what the contract forbids."""
    lint = pyproject()["tool"]["ruff"]["lint"]
    paths = ",".join(sorted(module.removesuffix(".py") for module in modules_in("pure core")))
    assert lint["per-file-ignores"][f"!trellis_slack/{{{paths}}}.py"] == ["TID251"]
    banned = set(lint["flake8-tidy-imports"]["banned-api"])
    assert banned == set(contract("pure-core")["forbidden_modules"])
    assert "TID251" in lint["select"]


def test_ci_and_the_readme_check_the_import_contracts() -> None:
    """`lint-imports` runs in .ci/run and in the README's development command."""
    assert re.search(r"^lint-imports$", (ROOT / ".ci" / "run").read_text(), flags=re.MULTILINE)
    assert "&& mypy && lint-imports &&" in README.read_text()
