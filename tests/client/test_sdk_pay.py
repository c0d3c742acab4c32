"""Pay from the SDK against a real server: an owner pays their in-house annotators, reads the
statements, books a correction once even when its answer is lost, and reads what labels cost."""

from __future__ import annotations

import csv
import io

import pytest

from qistas.client import Client, NotFound
from tests.client.test_sdk_accounts import LosesAnswers, token_of
from tests.conftest import LiveServer
from tests.factories import Tenant


def test_an_owner_pays_their_annotators_and_reads_the_cost(server: LiveServer, tenant: Tenant,
                                                            rival: Tenant) -> None:
    with Client(server.url, token_of(tenant.owner), backoff=0.01) as owner, \
            Client(server.url, token_of(tenant.inhouse), backoff=0.01) as worker, \
            Client(server.url, token_of(tenant.owner), transport=LosesAnswers(), backoff=0.01) as flaky:
        project = owner.projects.create(name="Paid", task={"type": "classification", "labels": ["a", "b"]},
                                        workforce="org", pay={"currency": "MAD", "per_task": 250})
        project.tasks.add([{"data": {"text": f"t{n}"}} for n in range(3)])
        mine = worker.projects.get(project.id)
        assert mine.data["pay"] == {"currency": "MAD", "per_task": 250}
        for _ in range(3):
            lease = mine.take()
            assert lease is not None
            mine.submit(lease["id"], {"label": "a"})
        me = worker.me()["id"]
        assert worker.pay.earnings()["totals"][0]["earned_minor"] == 750
        # The answer is lost, the SDK sends it again: one correction, not two.
        booked = flaky.pay.correct(me, amount_minor=-250, currency="MAD", reason="duplicate", project=project.id)
        statement = owner.pay.earnings(me)
        assert [c["id"] for c in statement["corrections"]] == [booked["id"]]
        assert (statement["totals"][0]["total_minor"], statement["totals"][0]["total"]) == (500, "5.00")
        owed = [row for row in owner.pay.payouts() if row["user_id"] == me]
        assert [(row["currency"], row["total_minor"]) for row in owed] == [("MAD", 500)]
        lines = [row for row in csv.DictReader(io.StringIO(owner.pay.payouts_csv(org="acme")))
                 if row["user_id"] == str(me)]
        assert [row["total"] for row in lines] == ["5.00"]
        cost = project.cost()["currencies"]
        assert [(c["answers"], c["per_label_minor"], c["total_minor"]) for c in cost] == [(3, 250, 500)]
        assert project.effective_rate()["pay"] == {"currency": "MAD", "per_task": 250}
        with Client(server.url, token_of(rival.owner), backoff=0.01) as theirs, pytest.raises(NotFound):
            theirs.pay.earnings(me)
