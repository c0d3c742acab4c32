"""The runnable example of docs/from-scale.md runs against a real server, as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import LiveServer
from tests.factories import Tenant

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_from_scale_example_runs(server: LiveServer, tenant: Tenant, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "from-scale.md").read_text(), re.S)
    assert len(blocks) == 1
    monkeypatch.setenv("QISTAS_URL", server.url)
    monkeypatch.setenv("QISTAS_TOKEN", tenant.owner.headers["Authorization"].split()[1])
    monkeypatch.delenv("CALLBACK_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    for _run in range(2):  # running it again creates nothing twice
        exec(compile(blocks[0], "from-scale.md", "exec"), {"__name__": "example"})
    out = capsys.readouterr().out
    assert "created 4, duplicates 0" in out
    assert "tasks: {'pending': 4, 'review': 0, 'completed': 0, 'canceled': 0}" in out
    assert "exported 0 results" in out
    assert (tmp_path / "tickets.jsonl").read_text() == ""
    projects = tenant.owner.get("/projects").json()
    assert [p["name"] for p in projects] == ["Support tickets", "Support tickets"]
    tasks = tenant.owner.get(f"/projects/{projects[0]['id']}/tasks").json()["items"]
    assert json.dumps(tasks[3]["data"], ensure_ascii=False) == '{"text": "تم خصم المبلغ مرتين"}'


def test_delivery_docs_name_every_setting_format_and_event() -> None:
    from qistas.config import Settings
    from qistas.domain.exportformats import formats
    from qistas.domain.outbox import EVENTS

    text = (DOCS / "delivery.md").read_text()
    delivery_settings = [name for name in Settings.model_fields
                         if name.startswith(("webhook_", "worker_", "background_", "export_", "cursor_"))]
    assert len(delivery_settings) == 13
    for name in delivery_settings:
        assert f"QISTAS_{name.upper()}" in text, name
    for fmt in formats():
        assert f"| `{fmt}` |" in text, fmt
    for event in EVENTS:
        assert f"`{event}`" in text, event
