"""Pay from the SDK (``client.pay``): statements, corrections and payouts. A project's cost and
effective hourly rate are ``Project.cost()`` and ``Project.effective_rate()``.

Amounts are integers in the currency's minor units (``*_minor``). Periods are ``[since, until)``,
aware datetimes (or ISO strings with a zone).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qistas.client.client import Client

When = datetime | str | None


def period(since: When, until: When) -> dict[str, str]:
    """The ``from``/``to`` query of a period; a datetime must carry its time zone."""
    query = {}
    for name, value in (("from", since), ("to", until)):
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError(f"{name} must be an aware datetime (with a time zone)")
            value = value.isoformat()
        if value is not None:
            query[name] = value
    return query


class Pay:
    def __init__(self, client: Client) -> None:
        self._client = client

    def earnings(self, user_id: int | None = None, *, since: When = None, until: When = None) -> dict[str, Any]:
        """A statement: your own (no ``user_id``), or an annotator's (owners: their organization's; admins)."""
        path = "/me/earnings" if user_id is None else f"/users/{user_id}/earnings"
        return self._client.request("GET", path, params=period(since, until)).json()

    def correct(self, user_id: int, *, amount_minor: int, currency: str, reason: str,
                project: int | None = None) -> dict[str, Any]:
        """Append a correction to an annotator's ledger; sent with an ``Idempotency-Key``, so a
        retry after a lost connection never books it twice."""
        body: dict[str, Any] = {"amount_minor": amount_minor, "currency": currency, "reason": reason}
        if project is not None:
            body["project"] = project
        response = self._client.request("POST", f"/users/{user_id}/earnings/corrections", json=body,
                                        headers={"Idempotency-Key": uuid.uuid4().hex}, retry=True)
        return response.json()

    def payouts(self, *, since: When = None, until: When = None, org: str | None = None) -> list[dict[str, Any]]:
        """What each annotator is owed for the period, one entry per annotator and currency."""
        return self._client.request("GET", "/payouts", params=self._query(since, until, org)).json()

    def payouts_csv(self, *, since: When = None, until: When = None, org: str | None = None) -> str:
        """The same as the payout CSV file."""
        query = {**self._query(since, until, org), "format": "csv"}
        return self._client.request("GET", "/payouts", params=query).text

    @staticmethod
    def _query(since: When, until: When, org: str | None) -> dict[str, str]:
        return {**period(since, until), **({"org": org} if org is not None else {})}
