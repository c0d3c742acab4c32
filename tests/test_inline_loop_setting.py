"""``QISTAS_POSTGRES_INLINE_LOOP``'s three choices, which databases ``auto`` counts as on this
machine (the URL read as libpq reads it; nothing is looked up), and the processes it wants."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import make_url

from qistas.config import Settings
from qistas.db.dialect import database_on_this_machine
from qistas.db.unit_of_work import postgres_loop_inline

NO_ENV: dict[str, str] = {}


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://qistas@/qistas",                               # the default Unix socket
    "postgresql+psycopg://qistas@/qistas?host=/var/run/postgresql",      # a socket's folder
    "postgresql+psycopg://qistas@/qistas?host=@pg",                      # an abstract socket
    "postgresql+psycopg://qistas:pw@localhost/qistas",
    "postgresql+psycopg://qistas:pw@localhost:5433/qistas",
    "postgresql+psycopg://qistas:pw@127.0.0.1:5432/qistas",
    "postgresql+psycopg://qistas:pw@127.8.0.2/qistas",                   # all of 127.0.0.0/8
    "postgresql+psycopg://qistas:pw@[::1]:5432/qistas",
    "postgresql+psycopg://qistas@/qistas?host=localhost&host=/tmp",      # every host of a list
    "postgresql+psycopg://qistas@db.internal/qistas?hostaddr=127.0.0.1",  # the address dialed
])
def test_a_database_on_this_machine(url: str) -> None:
    assert database_on_this_machine(make_url(url), NO_ENV)


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://qistas:pw@db.internal/qistas",                 # names are not looked up
    "postgresql+psycopg://qistas:pw@10.0.3.7:5432/qistas",
    "postgresql+psycopg://qistas:pw@[2001:db8::7]/qistas",
    "postgresql+psycopg://qistas@/qistas?host=localhost&host=db.internal",  # one host elsewhere
    "postgresql+psycopg://qistas@localhost/qistas?hostaddr=10.0.3.7",      # the address dialed
])
def test_a_database_elsewhere(url: str) -> None:
    assert not database_on_this_machine(make_url(url), NO_ENV)


def test_with_no_host_in_the_url_libpq_s_environment_decides() -> None:
    bare = make_url("postgresql+psycopg://qistas@/qistas")
    assert not database_on_this_machine(bare, {"PGHOST": "db.internal"})
    assert not database_on_this_machine(bare, {"PGHOSTADDR": "10.0.3.7"})
    assert database_on_this_machine(bare, {"PGHOST": "/run/postgresql"})
    named = make_url("postgresql+psycopg://qistas@localhost/qistas")
    assert database_on_this_machine(named, {"PGHOST": "db.internal"})  # the URL's host comes first


def test_the_three_choices() -> None:
    here, there = make_url("postgresql+psycopg://q@127.0.0.1/q"), make_url("postgresql+psycopg://q@10.1.1.1/q")
    enough = {"processes": 4, "cores": 4}
    assert postgres_loop_inline("auto", here, **enough) and not postgres_loop_inline("auto", there, **enough)
    assert postgres_loop_inline("on", here, **enough) and postgres_loop_inline("on", there, **enough)
    assert not postgres_loop_inline("off", here, **enough) and not postgres_loop_inline("off", there, **enough)


@pytest.mark.parametrize(("processes", "cores", "inline"), [
    (1, 1, True), (2, 2, True), (4, 2, True), (16, 16, True),
    (1, 2, False), (3, 4, False), (1, 16, False),   # a process has cores to spare: the thread pool
])
def test_auto_wants_as_many_processes_as_cores(processes: int, cores: int, inline: bool) -> None:
    here = make_url("postgresql+psycopg://q@127.0.0.1/q")
    assert postgres_loop_inline("auto", here, processes=processes, cores=cores) == inline
    assert postgres_loop_inline("on", here, processes=processes, cores=cores)


@pytest.mark.parametrize(("given", "read"), [
    ("auto", "auto"), ("on", "on"), ("off", "off"), ("true", "on"), ("false", "off"), ("TRUE", "on"),
    ("1", "on"), ("0", "off"), (True, "on"), (False, "off"),
])
def test_the_setting_reads_its_words_and_the_booleans_it_took_before(given: object, read: str) -> None:
    assert Settings(postgres_inline_loop=given).postgres_inline_loop == read  # type: ignore[arg-type]


def test_the_setting_is_auto_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QISTAS_POSTGRES_INLINE_LOOP", raising=False)
    assert Settings().postgres_inline_loop == "auto"
    monkeypatch.setenv("QISTAS_POSTGRES_INLINE_LOOP", "false")
    assert Settings().postgres_inline_loop == "off"


def test_another_word_is_refused() -> None:
    with pytest.raises(ValidationError, match="postgres_inline_loop"):
        Settings(postgres_inline_loop="sometimes")  # type: ignore[arg-type]
