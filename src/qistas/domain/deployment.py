"""What the server processes of one deployment must agree on, checked through the database.

Pseudonyms, signed media URLs, callback signatures, audit checkpoints and the secrets sealed
at rest are all derived from ``QISTAS_SECRET_KEY``. Two servers with different keys on one
database would name the same annotator differently, refuse each other's media links and
fail to open each other's sealed webhook secrets, all silently. So the database keeps the
key id (never the key) of the deployment's secret key: the first process to start records
it, and a process with another key refuses to start, naming the fix. A process whose
previous keys (``QISTAS_PREVIOUS_SECRET_KEYS``) include the recorded one is a rotation: it
records its new key.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from qistas.db.dialect import insert_skipping_conflicts
from qistas.db.models import InstanceKey, table
from qistas.db.types import utcnow
from qistas.domain.sealing import key_id
from qistas.errors import ConfigError

ROW = 1


def settle_secret_key(session: Session, *, current: str, previous: Sequence[str] = ()) -> str:
    """Record this process's key id as the deployment's, or check it against the recorded one.

    Returns the key id. Raises ``ConfigError`` when the database was first used with another
    key that is not one of ``previous``. Only flushes.
    """
    mine = key_id(current)
    session.execute(insert_skipping_conflicts(session, table(InstanceKey), ["id"]),
                    {"id": ROW, "key_id": mine, "changed_at": utcnow()})
    row = session.get(InstanceKey, ROW, with_for_update=True)
    assert row is not None
    if row.key_id == mine:
        return mine
    if row.key_id in {key_id(k) for k in previous}:
        row.key_id, row.changed_at = mine, utcnow()  # a rotation: the new key is the deployment's now
        session.flush()
        return mine
    raise ConfigError(
        f"this database is used with another secret key (key id {row.key_id}; this server's is {mine}). "
        "Every server of a deployment needs the same QISTAS_SECRET_KEY: set it to the key of the first "
        "server (QISTAS_SECRET_KEY, or the file secret_key in its QISTAS_HOME); after a rotation, name "
        "the old key in QISTAS_PREVIOUS_SECRET_KEYS (docs/deploy.md)"
    )
