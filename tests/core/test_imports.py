"""core/ and policies/ never import Bot Framework or aiohttp: only bot/ speaks Bot Framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = frozenset({"botbuilder", "botframework", "aiohttp"})
DYNAMIC_IMPORTERS = frozenset({"import_module", "__import__"})


def forbidden_imports(source: str, filename: str = "<source>") -> list[str]:
    """`line: module` for every import of a forbidden top-level package in source."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in DYNAMIC_IMPORTERS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    names = [first.value]
        line = getattr(node, "lineno", 0)
        found.extend(f"{line}: {name}" for name in names if name.split(".")[0] in FORBIDDEN)
    return found


@pytest.mark.parametrize(
    "source",
    [
        "import aiohttp",
        "import aiohttp.web as web",
        "import os, botbuilder.core",
        "from botbuilder.core import TurnContext",
        "from botframework.connector.auth import JwtTokenValidation",
        "from aiohttp import web",
        "def f():\n    from aiohttp import ClientSession\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import botbuilder.schema\n",
        "import importlib\nimportlib.import_module('aiohttp.web')",
        "__import__('botframework')",
    ],
)
def test_checker_catches_forbidden_imports(source: str) -> None:
    assert forbidden_imports(source)


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "from core.audit import service",
        "from . import aiohttp",
        "import aiohttp_retry",
        "from botbuilder_lookalike import x",
        "x = 'import aiohttp'",
    ],
)
def test_checker_allows_other_imports(source: str) -> None:
    assert forbidden_imports(source) == []


@pytest.mark.parametrize("package", ["core", "policies"])
def test_package_does_not_import_bot_framework_or_aiohttp(package: str) -> None:
    folder = ROOT / package
    if not folder.is_dir():
        pytest.skip(f"{package}/ does not exist yet")
    files = sorted(folder.rglob("*.py"))
    if package == "core":
        # Guard against walking the wrong folder and passing on nothing.
        assert folder / "db.py" in files and folder / "audit" / "service.py" in files
    elif not files:
        pytest.skip(f"{package}/ has no modules yet")

    offenders = [
        f"{path.relative_to(ROOT)}:{hit}"
        for path in files
        for hit in forbidden_imports(path.read_text(encoding="utf-8"), str(path))
    ]

    assert offenders == []
