"""Every setting, CLI command and error code is documented."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from qistas import errors
from qistas.api.errors import HTTP_CODES
from qistas.cli import main
from qistas.config import Settings

DOCS = Path(__file__).parent.parent / "docs"


def _docs_text() -> str:
    return "\n".join(p.read_text() for p in DOCS.rglob("*.md"))


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    assert f"QISTAS_{name.upper()}" in (DOCS / "settings.md").read_text()


def _commands(group: click.Group, prefix: str = "qistas") -> list[str]:
    found = []
    for name, command in group.commands.items():
        found.append(f"{prefix} {name}")
        if isinstance(command, click.Group):
            found.extend(_commands(command, f"{prefix} {name}"))
    return found


@pytest.mark.parametrize("command", _commands(main))
def test_every_cli_command_is_documented(command: str) -> None:
    assert f"`{command}" in _docs_text()


def _error_codes() -> set[str]:
    codes = set(HTTP_CODES.values()) | {"internal_error"}
    stack: list[type[errors.QistasError]] = [errors.QistasError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls not in (errors.QistasError, errors.ConfigError):
            codes.add(cls.code)
    return codes


@pytest.mark.parametrize("code", sorted(_error_codes()))
def test_every_error_code_is_documented(code: str) -> None:
    assert f"`{code}`" in (DOCS / "api.md").read_text()
