"""The SDK under a server's request limits: refused requests wait out ``Retry-After`` and are
each done once; a client that may not wait is told when to come back."""

from __future__ import annotations

import time

import httpx
import pytest

from qistas.client import Client, RateLimited
from qistas.config import Settings
from tests.conftest import LiveServer
from tests.factories import CLASSIFICATION, Tenant


def token_of(client: httpx.Client) -> str:
    return client.headers["Authorization"].split()[1]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"rate_limit_per_token": 2.0, "rate_limit_per_token_burst": 2})


def test_requests_over_the_limit_wait_it_out_or_say_when_to_come_back(tenant: Tenant, server: LiveServer) -> None:
    started = time.monotonic()
    with Client(server.url, token_of(tenant.owner), backoff=0.01) as sdk:
        names = [sdk.projects.create(name=f"p{i}", task=CLASSIFICATION).name for i in range(4)]
        assert names == ["p0", "p1", "p2", "p3"]  # refused POSTs were sent again, each made once
        assert sorted(p.name for p in sdk.projects.list()) == names
    assert time.monotonic() - started >= 0.5  # it did have to wait
    with Client(server.url, token_of(tenant.owner), backoff=0.01, rate_limit_wait=0) as impatient:
        with pytest.raises(RateLimited) as refused:
            for _ in range(5):
                impatient.projects.list()
        assert refused.value.status == 429 and refused.value.retry_after >= 1
