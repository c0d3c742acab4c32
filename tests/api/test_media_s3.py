"""Media on S3-compatible storage (moto's server on the loopback), and media fetched from URLs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from qistas.db.types import utcnow
from qistas.domain import media
from qistas.domain.mediastore import S3Store, blob_key
from tests.api.conftest import World, make_world
from tests.api.test_media import BOXES, png, upload

BUCKET = "qistas-media-test"
IMAGE = png(21, 13, (1, 2, 3))


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="k",
                          aws_secret_access_key="s")
    client.create_bucket(Bucket=BUCKET)
    client.close()
    yield url
    server.stop()
    inner = getattr(server, "_server", None)
    if inner is not None:
        inner.server_close()


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    """A customer's web server on the loopback, serving one image."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path != "/pics/cat.png":
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html")  # a lie: the bytes decide
            self.send_header("Content-Length", str(len(IMAGE)))
            self.end_headers()
            self.wfile.write(IMAGE)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def store(s3world: World) -> Iterator[S3Store]:
    found = S3Store(s3world.settings)
    yield found
    found.close()


@pytest.fixture(scope="module")
def s3world(template: str, tmp_path_factory: pytest.TempPathFactory, s3_url: str) -> Iterator[World]:
    with make_world(template, tmp_path_factory.mktemp("s3world"), media_s3_bucket=BUCKET,
                    media_s3_endpoint_url=s3_url, media_s3_access_key_id="k", media_s3_secret_access_key="s",
                    media_s3_prefix="q/", webhook_allowed_networks="127.0.0.1/32") as found:
        yield found


def test_s3_import_fetch_serve(s3world: World, origin: str, store: S3Store) -> None:
    tenant = s3world.tenant
    pid = tenant.project(BOXES, media={"fetch_urls": True})["id"]
    local = png(8, 9)
    done = upload(tenant.owner, pid, [{"data": {"image": f"{origin}/pics/cat.png"}}, {"data": {"image": "l.png"}}],
                  {"l.png": local})
    assert done.status_code == 201, done.text
    items = tenant.owner.get(f"/projects/{pid}/tasks").json()["items"]
    assert [(t["data"]["width"], t["data"]["height"]) for t in items] == [(21, 13), (8, 9)]
    assert items[0]["metadata"] == {"media": {"image": f"{origin}/pics/cat.png"}}
    sha = media.ref_hash(items[0]["data"]["image"])
    assert sha is not None and store.exists(blob_key(sha))
    assert f"q/{blob_key(sha)}" in [o["Key"] for o in store.client.list_objects_v2(Bucket=BUCKET)["Contents"]]

    lease = tenant.annotators[0].post(f"/projects/{pid}/assignments").json()
    url = lease["task"]["data"]["image"]
    assert origin not in str(lease)
    with httpx.Client(base_url=s3world.url) as anonymous:
        shown = anonymous.get(url)
    assert shown.status_code == 200 and shown.content == IMAGE
    assert shown.headers["content-type"] == "image/png" and shown.headers["content-security-policy"] == "sandbox"
    thumb = tenant.owner.get(f"/media/{sha}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"

    missing = upload(tenant.owner, pid, [{"data": {"image": f"{origin}/pics/dog.png"}}], {})
    assert missing.status_code == 422 and "HTTP 404" in missing.text


def test_purge_removes_unknown_blobs_only(s3world: World, tmp_path: Path, store: S3Store) -> None:
    stray = tmp_path / "stray"
    stray.write_bytes(b"left by an import that failed after storing")
    store.put_file(blob_key("f" * 64), stray, "application/octet-stream")
    with s3world.database.reader() as session:
        kept = set(store.keys("blobs/")) - {blob_key("f" * 64)}
        removed = media.purge(session, store, older_than=utcnow() + timedelta(seconds=1))
    assert removed == 1
    assert set(store.keys("blobs/")) == kept


def test_export_files_live_in_the_bucket(s3world: World, store: S3Store) -> None:
    """A finished export job's file is put into the bucket and streamed from it (any server
    reaches it); the purge of old jobs deletes it there."""
    from qistas.workers.exporter import Exporter

    tenant = s3world.tenant
    pid = tenant.project()["id"]
    tenant.add_tasks(pid, [{"data": {"text": f"t{i}"}, "unique_id": f"s3-{i}"} for i in range(40)])
    job_id = tenant.owner.post(f"/projects/{pid}/exports", json={"format": "jsonl"}).json()["id"]
    deadline = utcnow() + timedelta(seconds=30)
    while (job := tenant.owner.get(f"/exports/{job_id}").json())["status"] != "done":
        assert utcnow() < deadline, job
    key = f"exports/{job_id}-1-project-{pid}-export-{job_id}.jsonl"
    assert f"q/{key}" in [o["Key"] for o in store.client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert not (s3world.settings.media_folder / "exports").exists()
    download = tenant.owner.get(f"/exports/{job_id}/file")
    assert download.status_code == 200 and int(download.headers["content-length"]) == job["size_bytes"]
    assert sorted(json.loads(line)["unique_id"] for line in download.text.splitlines()) == sorted(
        f"s3-{i}" for i in range(40))
    assert download.headers["content-disposition"] == f'attachment; filename="project-{pid}-export-{job_id}.jsonl"'
    Exporter(s3world.settings, s3world.database, store).purge(
        now=utcnow() + timedelta(hours=s3world.settings.export_keep_hours + 1))
    assert not store.exists(key)
