"""Every server of a deployment has the same secret key, checked through the database: the
first to start records its key id; one with another key is refused, naming the fix; a
rotation (the old key among the previous ones) records the new key."""

from __future__ import annotations

import pytest

from qistas.db.engine import Database
from qistas.db.models import InstanceKey
from qistas.db.unit_of_work import write
from qistas.domain.deployment import settle_secret_key
from qistas.domain.sealing import key_id
from qistas.errors import ConfigError

FIRST = "first-key-" + "a" * 40
OTHER = "other-key-" + "b" * 40
NEW = "new-key-" + "c" * 40


def _settle(database: Database, current: str, previous: tuple[str, ...] = ()) -> str:
    return write(database, lambda session: settle_secret_key(session, current=current, previous=previous))


def _recorded(database: Database) -> str | None:
    with database.reader() as session:
        row = session.get(InstanceKey, 1)
        return row.key_id if row is not None else None


def test_the_first_key_is_recorded_and_another_is_refused(database: Database) -> None:
    assert _recorded(database) is None
    assert _settle(database, FIRST) == key_id(FIRST)
    assert _settle(database, FIRST) == key_id(FIRST)  # a restart, or a second server with the same key
    with pytest.raises(ConfigError) as refused:
        _settle(database, OTHER)
    assert key_id(FIRST) in refused.value.message and key_id(OTHER) in refused.value.message
    assert "QISTAS_SECRET_KEY" in refused.value.message and FIRST not in refused.value.message
    assert _recorded(database) == key_id(FIRST)


def test_a_rotation_records_the_new_key_and_the_old_one_is_refused_after(database: Database) -> None:
    _settle(database, FIRST)
    with pytest.raises(ConfigError):
        _settle(database, NEW, previous=(OTHER,))  # previous keys that are not the recorded one
    assert _settle(database, NEW, previous=(FIRST,)) == key_id(NEW)
    assert _recorded(database) == key_id(NEW)
    assert _settle(database, NEW, previous=(FIRST,)) == key_id(NEW)  # the other servers, restarted
    with pytest.raises(ConfigError):
        _settle(database, FIRST)  # a server still configured with the old key only
