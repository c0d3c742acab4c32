"""Media imported with tasks: stored by hash, served only through leases, bad files refused."""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import struct
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from qistas.db.models import Media, Task
from qistas.domain import media
from tests.api.conftest import World
from tests.api.helpers import error_of

BOXES = {"type": "boxes", "labels": ["cat", "dog"], "image_field": "image"}


def png(width: int = 40, height: int = 30, color: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def jpeg_rotated(width: int, height: int) -> bytes:
    """A JPEG stored ``width``×``height`` whose EXIF says: turn it a quarter (shown height×width)."""
    image = Image.new("RGB", (width, height), (10, 200, 10))
    exif = image.getexif()
    exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width``×``height`` pixels (the data itself is a few bytes)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def upload(client: httpx.Client, pid: int, rows: list[dict[str, Any]], files: dict[str, bytes]) -> httpx.Response:
    body = "\n".join(json.dumps(r) for r in rows).encode()
    parts: list[tuple[str, tuple[str, bytes, str]]] = [("file", ("tasks.jsonl", body, "application/x-ndjson"))]
    parts += [("media", (name, content, "application/octet-stream")) for name, content in files.items()]
    return client.post(f"/projects/{pid}/tasks", files=parts)


def zipped(entries: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return out.getvalue()


def counts(world: World, pid: int) -> tuple[int, int]:
    with world.database.reader() as session:
        tasks = session.scalar(select(func.count()).select_from(Task).where(Task.project_id == pid))
        org_media = session.scalar(select(func.count()).select_from(Media))
    return int(tasks or 0), int(org_media or 0)


def bare(world: World) -> httpx.Client:
    return httpx.Client(base_url=world.url)


def test_import_serve_and_lease_end(world: World) -> None:
    tenant = world.tenant
    pid = tenant.project(BOXES, redundancy={"min": 1, "max": 1})["id"]
    image = png(40, 30)
    done = upload(tenant.owner, pid, [{"unique_id": "a", "data": {"image": "cats/a.png"}},
                                      {"unique_id": "b", "data": {"image": "cats/b.png"}}],
                  {"cats/a.png": image, "cats/b.png": image})
    assert done.status_code == 201, done.text
    assert done.json() == {"created": 2, "duplicates": 0, "media": 1}  # the same bytes, stored once
    task = tenant.owner.get(f"/projects/{pid}/tasks").json()["items"][0]
    sha = media.ref_hash(task["data"]["image"])
    assert sha is not None and task["data"]["width"] == 40 and task["data"]["height"] == 30
    assert task["metadata"] == {"media": {"image": "cats/a.png"}}

    worker = tenant.annotators[0]
    lease = worker.post(f"/projects/{pid}/assignments").json()
    url = lease["task"]["data"]["image"]
    assert url.startswith(f"/api/v1/media/{sha}?") and "cats" not in json.dumps(lease)
    with bare(world) as anonymous:
        shown = anonymous.get(url)
        assert shown.status_code == 200 and shown.content == image
        assert shown.headers["content-type"] == "image/png"
        assert shown.headers["x-content-type-options"] == "nosniff"
        assert shown.headers["content-security-policy"] == "sandbox"
        assert shown.headers["content-length"] == str(len(image)) and shown.headers["accept-ranges"] == "bytes"
        part = anonymous.get(url, headers={"Range": "bytes=0-9"})  # an audio player seeking
        assert part.status_code == 206 and part.content == image[:10], part.status_code
        tampered = url.replace(f"scope=a{lease['id']}", f"scope=a{lease['id'] + 1}")
        assert anonymous.get(tampered).status_code == 404
        garbled = re.sub(r"sig=[^&]*", "sig=%C3%B0%F2%8C%A0%B1", url)  # not even ASCII: no signature is
        assert error_of(anonymous.get(garbled), 404)["code"] == "not_found"
        # A box past the image's width (read from its bytes) is refused.
        past = worker.post(f"/assignments/{lease['id']}/submit",
                           json={"answer": {"boxes": [{"x": 30, "y": 0, "w": 20, "h": 5, "label": "cat"}]}})
        assert error_of(past, 422)["details"]["field"] == "answer.boxes.0.w"
        ok = worker.post(f"/assignments/{lease['id']}/submit",
                         json={"answer": {"boxes": [{"x": 1, "y": 1, "w": 20, "h": 5, "label": "cat"}]}})
        assert ok.status_code == 201, ok.text
        assert anonymous.get(url).status_code == 403  # the lease ended with the answer


def test_tenancy_and_thumbnails(world: World) -> None:
    tenant = world.tenant
    pid = tenant.project(BOXES)["id"]
    image = jpeg_rotated(64, 32)
    assert upload(tenant.owner, pid, [{"data": {"image": "r.jpg"}}], {"r.jpg": image}).status_code == 201
    data = tenant.owner.get(f"/projects/{pid}/tasks").json()["items"][0]["data"]
    assert (data["width"], data["height"]) == (32, 64)  # as shown: EXIF orientation honoured
    sha = media.ref_hash(data["image"])
    assert tenant.member.get(f"/media/{sha}").content == image
    assert error_of(world.rival.owner.get(f"/media/{sha}"), 404)["code"] == "not_found"
    assert world.rival.owner.get(f"/media/{sha}/thumbnail").status_code == 404
    assert tenant.annotators[0].get(f"/media/{sha}").status_code == 404
    assert tenant.inhouse.get(f"/media/{sha}").status_code == 404
    with bare(world) as anonymous:
        assert anonymous.get(f"/api/v1/media/{sha}").status_code == 401
        secret = world.settings.secret_key or ""
        expired = media.signed_url(secret, sha256=sha, scope="a1", expires=int(time.time()) - 5)
        assert anonymous.get(expired).status_code == 403
    thumb = tenant.owner.get(f"/media/{sha}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as small:
        assert small.size == (32, 64)  # upright


@pytest.mark.parametrize(("files", "rows", "status", "named"), [
    ({"x.jpg": b"<html><script>alert(1)</script></html>"}, [{"data": {"image": "x.jpg"}}], 422, "x.jpg"),
    ({"y.jpg": png()}, [{"data": {"image": "y.jpg"}}], 422, "y.jpg"),  # a PNG named .jpg
    ({"a.png": png()}, [{"data": {"image": "a.png"}}, {"data": {"image": "gone.png"}}], 422, "gone.png"),
    ({"bomb.png": png_bomb(100_000, 100_000)}, [{"data": {"image": "bomb.png"}}], 422, "bomb.png"),
    ({"pic.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>"}, [{"data": {"image": "pic.svg"}}], 422, "pic.svg"),
])
def test_bad_files_write_nothing(world: World, files: dict[str, bytes], rows: list[dict[str, Any]], status: int,
                                 named: str) -> None:
    pid = world.tenant.project(BOXES)["id"]
    before = counts(world, pid)
    refused = upload(world.tenant.owner, pid, rows, files)
    assert refused.status_code == status, refused.text
    assert named in json.dumps(refused.json())
    assert counts(world, pid) == before


def spool_left(world: World) -> list[str]:
    folder = world.settings.media_folder / "tmp"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_an_import_leaves_nothing_spooled(world: World) -> None:
    """The files and the name index of an import live in a folder of the spool until the
    import ends: accepted or refused, nothing of it is left there, and a refused import
    stores no file."""
    owner = world.tenant.owner
    pid = world.tenant.project(BOXES)["id"]
    rows = [{"data": {"image": "same.png"}}, {"data": {"image": "same.png"}}, {"data": {"image": "other.png"}}]
    done = upload(owner, pid, rows, {"same.png": png(12, 10), "other.png": png(13, 10)})
    assert done.status_code == 201, done.text
    assert done.json()["media"] == 2  # a name named by two rows is one file
    shas = {media.ref_hash(t["data"]["image"]) for t in owner.get(f"/projects/{pid}/tasks").json()["items"]}
    assert len(shas) == 2
    assert spool_left(world) == []

    fresh = png(14, 10, color=(1, 2, 3))
    refused = upload(owner, pid, [{"data": {"image": "fresh.png"}}, {"data": {"image": "x.jpg"}}],
                     {"fresh.png": fresh, "x.jpg": b"<html></html>"})
    assert refused.status_code == 422, refused.text
    assert spool_left(world) == []
    blobs = world.settings.media_folder / "blobs"
    assert not any(p.name == hashlib.sha256(fresh).hexdigest() for p in blobs.rglob("*"))


def test_project_size_limit(world: World) -> None:
    pid = world.tenant.project(BOXES, media={"max_bytes": 100})["id"]
    refused = upload(world.tenant.owner, pid, [{"data": {"image": "big.png"}}], {"big.png": png(200, 200)})
    body = error_of(refused, 422)
    assert "big.png" in body["details"]["rows"][0]["message"]
    assert counts(world, pid)[0] == 0
    bad = world.tenant.owner.post("/projects", json={"name": "p", "task": BOXES, "media": {"types": ["text/html"]}})
    assert error_of(bad, 422)["details"]["field"] == "media.types"


def test_zip_import_and_refusals(world: World) -> None:
    owner = world.tenant.owner
    pid = world.tenant.project(BOXES)["id"]
    rows = "\n".join(json.dumps({"data": {"image": f"img/{i}.png"}}) for i in range(3))
    archive = zipped({"batch/tasks.jsonl": rows.encode(),
                      **{f"batch/img/{i}.png": png(10 + i, 10) for i in range(3)}})
    done = owner.post(f"/projects/{pid}/tasks", content=archive, headers={"content-type": "application/zip"})
    assert done.status_code == 201, done.text
    assert done.json()["media"] == 3
    widths = sorted(t["data"]["width"] for t in owner.get(f"/projects/{pid}/tasks").json()["items"])
    assert widths == [10, 11, 12]

    other = world.tenant.project(BOXES)["id"]
    tasks = json.dumps({"data": {"image": "a.png"}}).encode()
    bomb = zipped({"tasks.jsonl": tasks, "a.png": png(), "pad.bin": b"\0" * (8 << 20)})
    for archive, named in [(zipped({"tasks.jsonl": tasks, "../a.png": png()}), "../a.png"),
                           (zipped({"tasks.jsonl": tasks, "a.png": png()}, links=("b.png",)), "b.png"),
                           (bomb, "pad.bin"),
                           (b"PK\x03\x04 not really a zip", "zip")]:
        refused = owner.post(f"/projects/{other}/tasks?format=zip", content=archive,
                             headers={"content-type": "application/zip"})
        assert refused.status_code == 422, refused.text
        assert named in refused.json()["error"]["message"]
    assert counts(world, other)[0] == 0


def test_a_zip_of_too_many_entries_is_refused_before_they_are_read(world: World) -> None:
    from qistas.domain.mediaimports import MAX_ZIP_ENTRIES, zip_entries

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:  # past 65,535 entries: a zip64 end record
        archive.writestr("tasks.jsonl", json.dumps({"data": {"image": "0"}}))
        for i in range(MAX_ZIP_ENTRIES):
            archive.writestr(str(i), b"")
    out.seek(0)
    assert zip_entries(out) == MAX_ZIP_ENTRIES + 1
    pid = world.tenant.project(BOXES)["id"]
    refused = world.tenant.owner.post(f"/projects/{pid}/tasks", content=out.getvalue(),
                                      headers={"content-type": "application/zip"})
    body = error_of(refused, 422)
    assert body["details"] == {"field": "file", "limit": MAX_ZIP_ENTRIES}
    assert str(MAX_ZIP_ENTRIES + 1) in body["message"]
    assert counts(world, pid)[0] == 0
    small = zipped({"tasks.jsonl": b"", "a.png": png()})
    assert zip_entries(io.BytesIO(small)) == 2 and zip_entries(io.BytesIO(b"not a zip")) is None


def test_private_urls_refused(world: World) -> None:
    pid = world.tenant.project(BOXES, media={"fetch_urls": True})["id"]
    before = counts(world, pid)
    refused = world.tenant.owner.post(f"/projects/{pid}/tasks", json=[
        {"data": {"image": "http://169.254.169.254/latest/meta-data/x.png"}}])
    body = error_of(refused, 422)
    assert "169.254.169.254" in body["details"]["rows"][0]["message"]
    assert counts(world, pid) == before


def test_sdk_and_cli_send_a_media_folder(world: World, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from qistas.cli import main
    from qistas.client import Client

    folder = tmp_path / "pics"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.png").write_bytes(png(5, 6))
    (folder / "b.png").write_bytes(png(7, 8))
    tasks = tmp_path / "rows.jsonl"
    tasks.write_text('{"data": {"image": "sub/a.png"}}\n{"data": {"image": "b.png"}}\n')
    token = world.tenant.owner.headers["Authorization"].split()[1]
    pid = world.tenant.project(BOXES)["id"]
    with Client(world.url, token) as client:
        done = client.projects.get(pid).tasks.upload(tasks, media=folder)
    assert (done.created, done.media) == (2, 2)
    other = world.tenant.project(BOXES)["id"]
    result = CliRunner().invoke(main, ["import", str(other), str(tasks), "--media", str(folder),
                                       "--url", world.url, "--token", token])
    assert result.exit_code == 0, result.output
    assert "created 2, duplicates 0, media files 2" in result.output
    sizes = sorted((t["data"]["width"], t["data"]["height"])
                   for t in world.tenant.owner.get(f"/projects/{other}/tasks").json()["items"])
    assert sizes == [(5, 6), (7, 8)]
