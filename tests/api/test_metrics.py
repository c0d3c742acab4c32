"""``GET /metrics``: Prometheus text, counters that move with real requests, gauges read from the database."""

from __future__ import annotations

import httpx

from qistas.config import Settings
from qistas.db.engine import Database
from tests.api.conftest import World
from tests.api.helpers import error_of, scrape, value
from tests.conftest import LiveServer


def test_requests_are_counted_by_route_template_and_status_class(world: World) -> None:
    owner = world.tenant.owner
    pid = world.tenant.project()["id"]
    route = "/api/v1/projects/{project_id}"
    before = scrape(world.url)
    assert owner.get(f"/projects/{pid}").status_code == 200
    assert owner.get(f"/projects/{pid}").status_code == 200
    assert owner.get("/projects/987654").status_code == 404
    assert owner.get("/no/such/path/31337").status_code == 404
    after = scrape(world.url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"method": "GET", "route": route, "status": "2xx"}
    assert moved("qistas_http_requests_total", **ok) == 2
    assert moved("qistas_http_requests_total", method="GET", route=route, status="4xx") == 1
    assert moved("qistas_http_requests_total", method="GET", route="unmatched", status="4xx") == 1
    # The histogram: every request in +Inf and in the count, each in one bucket or the next.
    assert moved("qistas_http_request_duration_seconds_count", **ok) == 2
    assert moved("qistas_http_request_duration_seconds_bucket", **ok, le="+Inf") == 2
    assert moved("qistas_http_request_duration_seconds_bucket", **ok, le="30.0") == 2
    assert moved("qistas_http_request_duration_seconds_sum", **ok) > 0
    buckets = [float(dict(labels)["le"]) for name, labels in after
               if name == "qistas_http_request_duration_seconds_bucket" and dict(labels)["route"] == route]
    assert 0.001 in buckets and 0.01 in buckets
    # Labels are templates: no raw path, no id, ever.
    routes = {dict(labels).get("route") for _, labels in after} - {None}
    raw = {str(pid), "31337", "987654"}
    assert not any(raw & set(r.split("/")) for r in routes if r), routes


def test_the_loop_counters_and_the_backlog_gauges_follow_a_lease(world: World) -> None:
    tenant = world.tenant
    pid = tenant.project()["id"]
    tenant.add_tasks(pid, [{"data": {"text": f"metrics {n}"}} for n in range(3)])
    worker = tenant.annotators[0]
    before = scrape(world.url)
    taken = worker.post(f"/projects/{pid}/assignments")
    assert taken.status_code == 201
    leased = scrape(world.url)
    assert value(leased, "qistas_assignments_taken_total") - value(before, "qistas_assignments_taken_total") == 1
    assert value(leased, "qistas_leases_active") - value(before, "qistas_leases_active") == 1
    assert value(leased, "qistas_tasks_pending") == value(before, "qistas_tasks_pending") >= 3
    assert value(leased, "qistas_database_up") == 1
    submit = f"/assignments/{taken.json()['id']}/submit"
    assert worker.post(submit, json={"answer": {"label": "positive"}}).status_code == 201
    assert worker.post(submit, json={"answer": {"label": "positive"}}).status_code == 200  # a repeat
    second = worker.post(f"/projects/{pid}/assignments").json()
    assert worker.post(f"/assignments/{second['id']}/skip").status_code == 204
    after = scrape(world.url)
    assert value(after, "qistas_answers_submitted_total") - value(before, "qistas_answers_submitted_total") == 1
    assert value(after, "qistas_assignments_skipped_total") - value(before, "qistas_assignments_skipped_total") == 1
    assert value(after, "qistas_assignments_taken_total") - value(before, "qistas_assignments_taken_total") == 2
    assert value(after, "qistas_leases_active") == value(before, "qistas_leases_active")
    for status in ("queued", "running"):
        assert ("qistas_export_jobs", frozenset({("status", status)})) in after
    assert ("qistas_webhook_deliveries_pending", frozenset()) in after


def test_metrics_are_outside_the_api_schema(world: World) -> None:
    document = httpx.get(world.url + "/api/v1/openapi.json").json()
    assert not {"/metrics", "/readyz", "/healthz"} & set(document["paths"])


def test_a_metrics_token_is_required_once_set(settings: Settings, database: Database) -> None:
    token = "m" * 24
    guarded = settings.model_copy(update={"metrics_token": token, "background_workers": False})
    with LiveServer(guarded, database) as live, httpx.Client(base_url=live.url) as anonymous:
        error = error_of(anonymous.get("/metrics"), 401)
        assert error["code"] == "unauthorized" and "QISTAS_METRICS_TOKEN" in error["message"]
        wrong = anonymous.get("/metrics", headers={"Authorization": "Bearer " + "n" * 24})
        assert error_of(wrong, 401)["code"] == "unauthorized"
        assert value(scrape(live.url, token), "qistas_database_up") == 1
