"""Skip messages help a newcomer: they name no path outside the repository (read from the tests' source)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from tests.helpers import ROOT

#: An absolute path in a message: "/usr/…", "/tmp/…" (a relative one such as tests/data is fine).
_ABSOLUTE = re.compile(r"(?:^|[\s(\"'`])/[\w.]")
_SKIPS = {"skip": 0, "skipif": None, "importorskip": None}


def _messages(call: ast.Call) -> Iterator[ast.expr]:
    """The message arguments of a ``pytest.skip`` / ``skipif`` / ``importorskip`` call."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else None
    if name not in _SKIPS:
        return
    position = _SKIPS[name]
    if position is not None and len(call.args) > position:
        yield call.args[position]
    for keyword in call.keywords:
        if keyword.arg in ("reason", "msg"):
            yield keyword.value


def _path_constants(tree: ast.Module) -> set[str]:
    """Module-level names bound to a filesystem path (``ROOT / "x"``, ``Path(…)``, ``__file__``)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            value = node.value
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if value is not None and _is_path(value):
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _is_path(value: ast.expr) -> bool:
    for node in ast.walk(value):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return True
        if isinstance(node, ast.Name) and node.id in ("Path", "ROOT", "__file__"):
            return True
    return False


def _problems(source: str, where: str) -> Iterator[str]:
    tree = ast.parse(source, filename=where)
    paths = _path_constants(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for message in _messages(node):
            for part in ast.walk(message):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    if _ABSOLUTE.search(part.value):
                        yield f"{where}:{node.lineno}: an absolute path in {part.value!r}"
                elif isinstance(part, ast.FormattedValue):
                    named = {n.id for n in ast.walk(part.value) if isinstance(n, ast.Name)}
                    if named & paths:
                        yield f"{where}:{node.lineno}: shows the path {sorted(named & paths)}"


def test_no_skip_message_names_a_path_outside_the_repository() -> None:
    """No skip message quotes an absolute path or a path variable (say what to install instead)."""
    problems: list[str] = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        try:
            source = path.read_text()
        except FileNotFoundError:  # a file another test made and removed meanwhile
            continue
        problems += _problems(source, str(path.relative_to(ROOT)))
    assert problems == []


def test_the_check_above_catches_a_path() -> None:
    """A skip that shows a path built from ROOT, or a literal /usr/… path, is found."""
    source = (
        'import pytest\nSHARED = ROOT.parent / "shared"\n'
        'def test_x():\n    pytest.skip(f"no reference at {SHARED}")\n'
        '    pytest.mark.skipif(True, reason="needs /usr/bin/chromium")\n'
    )
    assert _path_constants(ast.parse(source)) == {"SHARED"}
    assert len(list(_problems(source, "sample.py"))) == 2
