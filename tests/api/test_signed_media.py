"""Signed media URLs answered ahead of the middleware (``api/signed_media.py``): the same answer
as the route's, counted against the lease's own rate instead of the annotator's requests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from qistas.domain import media
from tests.api.conftest import World, make_world
from tests.api.helpers import error_of
from tests.api.test_media import BOXES, png, upload
from tests.factories import Tenant

LEASE_BURST = 20


@pytest.fixture(scope="module")
def world(template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """An annotator may make 4 requests at once (then one a second); an address, or a lease's
    images, 20."""
    with make_world(template, tmp_path_factory.mktemp("signed-media"), rate_limit_per_token=1,
                    rate_limit_per_token_burst=4, rate_limit_per_address=1,
                    rate_limit_per_address_burst=LEASE_BURST) as found:
        yield found


def _leased_image(tenant: Tenant, worker: httpx.Client) -> tuple[str, bytes]:
    """A task's image URL, as the annotator's lease gives it (two of the owner's 4 requests)."""
    owner = tenant.owner
    pid = tenant.project(BOXES, redundancy={"min": 1, "max": 1})["id"]
    image = png(20, 10)
    assert upload(owner, pid, [{"data": {"image": "a.png"}}], {"a.png": image}).status_code == 201
    lease = worker.post(f"/projects/{pid}/assignments")
    assert lease.status_code == 201, lease.text
    url = lease.json()["task"]["data"]["image"]
    assert media.ref_hash(url) is None and url.startswith("/api/v1/media/")
    return url, image


def test_a_tasks_images_do_not_spend_the_annotators_requests(world: World) -> None:
    worker = world.tenant.annotators[0]
    url, image = _leased_image(world.tenant, worker)  # the take: 1 of the annotator's 4
    with httpx.Client(base_url=world.url, headers=worker.headers) as browser:
        for _ in range(8):  # through the route, the third of these would answer 429
            shown = browser.get(url)
            assert shown.status_code == 200, shown.text
            assert shown.content == image
        assert shown.headers["content-type"] == "image/png"
        assert shown.headers["content-length"] == str(len(image))
        for name, value in (("x-content-type-options", "nosniff"), ("content-security-policy", "sandbox"),
                            ("content-disposition", "inline"), ("cross-origin-resource-policy", "same-origin"),
                            ("accept-ranges", "bytes"), ("referrer-policy", "same-origin"),
                            ("x-frame-options", "DENY")):
            assert shown.headers[name] == value, name
        assert shown.headers["cache-control"].startswith("private, max-age=")
        assert shown.headers["x-request-id"]
    # The annotator still has requests left for their work.
    assert worker.get("/me").status_code == 200


def test_what_the_route_answers_is_unchanged(world: World) -> None:
    url, image = _leased_image(world.rival, world.rival.annotators[0])  # another owner's requests
    with httpx.Client(base_url=world.url) as anonymous:
        assert anonymous.get(url, headers={"Range": "bytes=0-3"}).content == image[:4]
        assert "&sig=" in url and url.rsplit("=", 1)[1].isalnum()
        tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
        assert error_of(anonymous.get(tampered), 404)["code"] == "not_found"
        extra = anonymous.get(url + "&extra=1")  # not a signed URL's query: the route's answer
        assert extra.status_code >= 400 and list(extra.json()) == ["error"]
        expired = url.split("expires=")[0] + "expires=1&" + url.split("&", 2)[-1]
        assert anonymous.get(expired).status_code in (403, 404)


def test_a_lease_over_its_rate_meets_the_usual_limits(world: World) -> None:
    """Last in this module: it spends the test address's requests."""
    url, _ = _leased_image(world.tenant, world.tenant.annotators[1])
    statuses = []
    with httpx.Client(base_url=world.url) as anonymous:
        for _ in range(3 * LEASE_BURST):
            response = anonymous.get(url)
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert error_of(response, 429)["details"]["limit"] == "address"
                break
    # The lease's own burst, then what is left of the address's (the route's limit), then refused.
    assert statuses[:LEASE_BURST] == [200] * LEASE_BURST
    assert statuses[-1] == 429 and statuses.count(200) > LEASE_BURST
