"""The API's interactive documentation works with no network beyond the server."""

from __future__ import annotations

from playwright.sync_api import Page, Route

from tests.conftest import LiveServer


def test_api_docs_render_offline(page: Page, server: LiveServer) -> None:
    outside: list[str] = []
    errors: list[str] = []

    def only_the_server(route: Route) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto("/api/v1/docs")
    page.locator(".opblock-summary-path").first.wait_for(timeout=15_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/projects/{project_id}/annotations" in [p.replace("\u200b", "") for p in paths]
    assert page.title() == "Qistas API"
    assert outside == [], outside  # nothing was asked of another host
    assert not [e for e in errors if "Content Security Policy" in e], errors
