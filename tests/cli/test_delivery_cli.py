"""``qistas import``, ``export`` and ``status`` through the SDK, against a real server."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from qistas.cli import main
from qistas.config import Settings
from tests.conftest import LiveServer
from tests.factories import Tenant, label_everything


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_poll_seconds": 0.05, "cursor_settle_seconds": 0})


def test_import_export_status(server: LiveServer, tenant: Tenant, tmp_path: Path) -> None:
    token = tenant.owner.headers["Authorization"].split()[1]
    common = ["--url", server.url, "--token", token]
    pid = tenant.project()["id"]
    source = tmp_path / "tasks.jsonl"
    source.write_text("".join(json.dumps({"data": {"text": f"t{i}"}, "unique_id": f"u{i}"}) + "\n"
                              for i in range(20)))
    runner = CliRunner()
    imported = runner.invoke(main, ["import", str(pid), str(source), *common])
    assert imported.exit_code == 0, imported.output
    assert "created 20, duplicates 0" in imported.output
    label_everything(tenant, pid, {"label": "negative"})

    job = runner.invoke(main, ["export", str(pid), "--format", "parquet", "-o", str(tmp_path / "o.parquet"),
                               "--completed", *common])
    assert job.exit_code == 0, job.output
    assert pq.read_table(tmp_path / "o.parquet").num_rows == 20
    cursor = next(line.split()[1] for line in job.output.splitlines() if line.startswith("cursor "))

    streamed = runner.invoke(main, ["export", str(pid), "--stream", "-o", str(tmp_path / "o.jsonl"),
                                    "--since", cursor, *common])
    assert streamed.exit_code == 0, streamed.output
    assert (tmp_path / "o.jsonl").read_text() == ""

    shown = runner.invoke(main, ["status", str(pid), *common])
    assert shown.exit_code == 0, shown.output
    assert "completed 20" in shown.output and "100.0% done" in shown.output and "parquet" in shown.output

    bad = runner.invoke(main, ["export", str(pid), "--format", "coco", "-o", str(tmp_path / "c.json"), *common])
    assert bad.exit_code != 0 and "boxes" in bad.output
