"""The client and its resources: projects, tasks, results, exports, webhooks."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from qistas.client.accounts import Tokens, Users
from qistas.client.errors import RateLimited, ServerError, TransportError, raise_for_error
from qistas.client.exports import ExportJob, Exports, stream_export
from qistas.client.generation import GenerationBatch, generate
from qistas.client.media import media_zip
from qistas.client.models import Batch, ExportInfo, ImportResult, ModelUsage, Result, ReviewPolicy, parse
from qistas.client.pay import Pay, When, period
from qistas.client.prelabel import ModelEndpoints, PrelabelJob, prelabel
from qistas.client.reviews import Reviews
from qistas.client.webhooks import Webhooks

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
IMPORT_CHUNK = 5000
RETRIES = 4
RATE_LIMIT_WAIT = 60.0  # seconds one request may spend waiting out 429s, in all
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Progress = Callable[[int], None]


class Client:
    """``Client(url, token)``; ``transport`` may be any httpx transport (tests, proxies).

    A request over a server's request limit (429 ``too_many_requests``) is sent again after the
    server's ``Retry-After``, whatever its method (the server refused it before doing anything),
    as long as the waits add up to at most ``rate_limit_wait`` seconds; then ``RateLimited`` is
    raised with the server's ``retry_after``.
    """

    def __init__(self, url: str, token: str, *, transport: httpx.BaseTransport | None = None,
                 timeout: httpx.Timeout | float = DEFAULT_TIMEOUT, retries: int = RETRIES,
                 backoff: float = 0.5, rate_limit_wait: float = RATE_LIMIT_WAIT) -> None:
        self.http = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
            timeout=timeout,
        )
        self.retries = retries
        self.backoff = backoff
        self.rate_limit_wait = rate_limit_wait
        self.projects = Projects(self)
        self.webhooks = Webhooks(self)
        self.exports = Exports(self)
        self.reviews = Reviews(self)
        self.users = Users(self)
        self.tokens = Tokens(self)
        self.model_endpoints = ModelEndpoints(self)
        self.pay = Pay(self)

    def pages(self, path: str, *, page_size: int = 1000, after: int | None = None,
              **params: Any) -> Iterator[dict[str, Any]]:
        """The items of a list the server answers a page at a time (``{"items","next"}``), from
        after ``after``, following ``next`` until the end; ``params``: the list's filters (None
        ones left out)."""
        query = {"limit": page_size, **{k: v for k, v in params.items() if v is not None}}
        while True:
            page = self.request("GET", path, params=query if after is None else {**query, "after": after}).json()
            yield from page["items"]
            if page["next"] is None:
                return
            after = page["next"]

    def request(self, method: str, path: str, *, retry: bool | None = None, **kwargs: Any) -> httpx.Response:
        """Send a request; safe ones (GET, or ``retry=True``) are retried on 5xx and lost
        connections, and every one is sent again after a 429 ``too_many_requests`` (see the class)."""
        if retry is None:
            retry = method.upper() == "GET"
        attempts = self.retries + 1 if retry else 1
        attempt = 0
        waited = 0.0
        while True:
            last = attempt >= attempts - 1
            try:
                response = self.http.request(method, path, **kwargs)
                raise_for_error(response)
                return response
            except RateLimited as refused:
                pause = refused.retry_after
                if waited + pause > self.rate_limit_wait:
                    raise
                waited += pause
                time.sleep(pause)
                continue  # not an attempt: the server did nothing with it
            except httpx.TransportError as exc:
                if last:
                    raise TransportError(f"{method} {path}: {exc}") from exc
            except ServerError:
                if last:
                    raise
            time.sleep(self.backoff * 2**attempt)
            attempt += 1

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def me(self) -> dict[str, Any]:
        return self.request("GET", "/me").json()


class Projects:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, **fields: Any) -> Project:
        """``review`` may be a ``ReviewPolicy`` or a dict."""
        return Project(self._client, self._client.request("POST", "/projects", json=_fields(fields)).json())

    def update(self, project_id: int, **fields: Any) -> Project:
        """Change the fields given (``review=ReviewPolicy(...)`` sets the review policy); the others stay."""
        return Project(self._client,
                       self._client.request("PATCH", f"/projects/{project_id}", json=_fields(fields)).json())

    def get(self, project_id: int) -> Project:
        return Project(self._client, self._client.request("GET", f"/projects/{project_id}").json())

    def list(self) -> list[Project]:
        return [Project(self._client, p) for p in self._client.request("GET", "/projects").json()]


def _fields(fields: dict[str, Any]) -> dict[str, Any]:
    if isinstance(fields.get("review"), ReviewPolicy):
        fields = {**fields, "review": dataclasses.asdict(fields["review"])}
    return fields


class ResultStream:
    """Results in completion order; ``cursor`` is where the next ``results(since=...)`` starts."""

    def __init__(self, client: Client, project_id: int, since: str, page_size: int) -> None:
        self._client = client
        self._path = f"/projects/{project_id}/results"
        self.cursor = since
        self._page_size = page_size

    def __iter__(self) -> Iterator[Result]:
        while True:
            page = self._client.request("GET", self._path,
                                        params={"since": self.cursor, "limit": self._page_size}).json()
            for item in page["items"]:
                yield parse(Result, item)
            self.cursor = page["next"]
            if len(page["items"]) < self._page_size:
                return


class Project:
    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self._client = client
        self.data = data
        self.id: int = data["id"]
        self.name: str = data.get("name", "")
        self.task: dict[str, Any] = data.get("task", {})
        self.tasks = Tasks(client, self.id)

    def __repr__(self) -> str:
        return f"Project(id={self.id}, name={self.name!r})"

    @property
    def review(self) -> ReviewPolicy:
        """The review policy (all defaults: no review stage)."""
        return parse(ReviewPolicy, self.data.get("review") or {})

    def update(self, **fields: Any) -> Project:
        """Change the fields given; returns the project as the server now has it."""
        return self._client.projects.update(self.id, **fields)

    def stats(self) -> dict[str, Any]:
        return self._client.request("GET", f"/projects/{self.id}/stats").json()

    def cost(self, *, since: When = None, until: When = None) -> dict[str, Any]:
        """What the project's labels cost in the period: per label and per completed task, per currency."""
        return self._client.request("GET", f"/projects/{self.id}/cost", params=period(since, until)).json()

    def effective_rate(self, *, since: When = None, until: When = None) -> dict[str, Any]:
        """Each answer's earning over its server-measured time, per hour, against the project's floor."""
        return self._client.request("GET", f"/projects/{self.id}/effective-rate", params=period(since, until)).json()

    def create_batch(self, name: str, callback_url: str | None = None) -> Batch:
        body = {"name": name, "callback_url": callback_url}
        return parse(Batch, self._client.request("POST", f"/projects/{self.id}/batches", json=body).json())

    def batches(self) -> list[Batch]:
        """Every batch of the project, read a page at a time."""
        return [parse(Batch, b) for b in self._client.pages(f"/projects/{self.id}/batches")]

    def finalize_batch(self, batch_id: int) -> Batch:
        """staging → in_progress: its tasks are served to annotators."""
        return parse(Batch, self._client.request("POST", f"/batches/{batch_id}/finalize").json())

    def results(self, *, since: str | datetime | None = None, after: int | None = None,
                page_size: int = 1000) -> Iterable[Result]:
        """Completed results. With ``since`` (a cursor, ``"0.0"`` for the beginning, or an aware
        datetime) they come in completion order and the returned stream's ``cursor`` says where
        to continue."""
        if isinstance(since, datetime):
            if since.tzinfo is None:
                raise ValueError("since must be an aware datetime (with a time zone)")
            # A cursor is microseconds since the epoch, then a task id (0: every task at that time).
            since = f"{(since - EPOCH) // timedelta(microseconds=1)}.0"
        if since is not None:
            return ResultStream(self._client, self.id, since, page_size)
        return self._results_by_id(after, page_size)

    def _results_by_id(self, after: int | None, page_size: int) -> Iterator[Result]:
        for item in self._client.pages(f"/projects/{self.id}/results", page_size=page_size, after=after):
            yield parse(Result, item)

    def export(self, *, format: str = "jsonl", path: str | Path, completed: bool = False,
               min_confidence: float | None = None, batch: str | None = None, since: str | None = None,
               on_progress: Progress | None = None) -> ExportInfo:
        """Stream an export into ``path`` (a folder for ``hf``); written whole, then renamed."""
        params = _options(completed=completed, min_confidence=min_confidence, batch=batch, since=since)
        params["format"] = format
        return stream_export(self._client, f"/projects/{self.id}/export", Path(path), params=params,
                             folder=format == "hf", on_progress=on_progress)

    def export_job(self, *, format: str = "jsonl", completed: bool = False, min_confidence: float | None = None,
                   batch: str | None = None, since: str | None = None) -> ExportJob:
        """Queue a background export; ``.wait()`` then ``.download(path)``."""
        body = {"format": format, **_options(completed=completed, min_confidence=min_confidence, batch=batch,
                                             since=since)}
        return ExportJob(self._client, self._client.request("POST", f"/projects/{self.id}/exports", json=body).json())

    def generate(self, *, endpoints: list[int], template: dict[str, str], count: int,
                 topics: list[str] | None = None, language: str = "", seed: int = 0, temperature: float = 0.7,
                 dedup_threshold: float = 0.8) -> GenerationBatch:
        """Queue a generation batch (docs/models.md#synthetic-data); ``.wait()`` follows it."""
        return generate(self._client, self.id, endpoints=endpoints, template=template, count=count, topics=topics,
                        language=language, seed=seed, temperature=temperature, dedup_threshold=dedup_threshold)

    def generation_batches(self) -> list[GenerationBatch]:
        """The project's newest generation batches."""
        page = self._client.request("GET", f"/projects/{self.id}/generation-batches").json()
        return [GenerationBatch(self._client, item) for item in page["items"]]

    def prelabel(self, *, endpoint: int, template: dict[str, str], as_: str = "predictions",
                 only_pending: bool = True, standing: bool = False) -> PrelabelJob:
        """Queue a pre-label job (docs/models.md#running-a-job): the answers become predictions,
        or (``as_="annotations"``) the model's own annotations; ``.wait()`` follows it.
        ``standing``: it answers each task added afterwards too, until ``.stop()``."""
        return prelabel(self._client, self.id, endpoint=endpoint, template=template, as_=as_,
                        only_pending=only_pending, standing=standing)

    def prelabel_jobs(self) -> list[PrelabelJob]:
        """The project's newest pre-label jobs, newest first."""
        page = self._client.request("GET", f"/projects/{self.id}/prelabel-jobs").json()
        return [PrelabelJob(self._client, item) for item in page["items"]]

    def model_usage(self) -> ModelUsage:
        """The project's model accounting (requests, tokens, cost) over all its pre-label jobs."""
        page = self._client.request("GET", f"/projects/{self.id}/prelabel-jobs").json()
        return parse(ModelUsage, page["usage"])

    # -- qualification exams (docs/workforce.md#exams) ---------------------------------------

    def set_exam(self, *, pass_mark: float, questions: int, cooldown_seconds: int = 0,
                 max_attempts: int | None = None, grants: dict[str, Any] | None = None) -> dict[str, Any]:
        """Make the project an exam (its gold tasks are the questions), or change its settings."""
        body = {"pass_mark": pass_mark, "questions": questions, "cooldown_seconds": cooldown_seconds,
                "max_attempts": max_attempts, "grants": grants}
        # The same settings twice leave the same exam: a retry is safe.
        return self._client.request("PUT", f"/projects/{self.id}/exam", json=body, retry=True).json()

    def exam(self) -> dict[str, Any]:
        return self._client.request("GET", f"/projects/{self.id}/exam").json()

    def start_attempt(self) -> dict[str, Any]:
        """Begin an attempt at the exam (the open one when you have one); then ``take`` its
        questions and ``submit`` them like any task."""
        # Starting again while an attempt is open returns it: a retry is safe.
        return self._client.request("POST", f"/projects/{self.id}/exam/attempts", retry=True).json()

    def attempts(self) -> list[dict[str, Any]]:
        """Your attempts at the exam (to its organization: everyone's, pseudonymous), with the
        score and the verdict once finished; read a page at a time."""
        return list(self._client.pages(f"/projects/{self.id}/exam/attempts"))

    # -- annotator side ---------------------------------------------------------------------

    def take(self) -> dict[str, Any] | None:
        response = self._client.request("POST", f"/projects/{self.id}/assignments")
        return None if response.status_code == 204 else response.json()

    def submit(self, assignment_id: int, answer: Any, seconds: float | None = None) -> dict[str, Any]:
        body = {"answer": answer, "seconds": seconds}
        # Submitting the same lease twice stores one annotation, so a retry is safe.
        return self._client.request(
            "POST", f"/assignments/{assignment_id}/submit", json=body, retry=True).json()

    def skip(self, assignment_id: int) -> None:
        self._client.request("POST", f"/assignments/{assignment_id}/skip")


def _options(**options: Any) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None and v is not False}


class Tasks:
    def __init__(self, client: Client, project_id: int) -> None:
        self._client = client
        self._project_id = project_id

    def add(self, tasks: Iterable[dict[str, Any]], *, batch: str | None = None, chunk_size: int = IMPORT_CHUNK,
            on_progress: Progress | None = None) -> ImportResult:
        """Import tasks in chunks, each all or nothing.

        A chunk whose tasks all have a ``unique_id`` is retried after a 5xx or a lost
        connection: tasks the server already stored come back as duplicates, never twice.
        """
        created = duplicates = 0
        chunk: list[dict[str, Any]] = []

        def send() -> None:
            nonlocal created, duplicates
            body = "\n".join(json.dumps(t, ensure_ascii=False) for t in chunk).encode()
            idempotent = all(t.get("unique_id") is not None for t in chunk)
            result = self._client.request(
                "POST", f"/projects/{self._project_id}/tasks", content=body, retry=idempotent,
                headers={"content-type": "application/x-ndjson"},
            ).json()
            created += result["created"]
            duplicates += result["duplicates"]
            if on_progress is not None:
                on_progress(len(chunk))
            chunk.clear()

        for task in tasks:
            chunk.append({**task, "batch": batch} if batch is not None else task)
            if len(chunk) >= chunk_size:
                send()
        if chunk:
            send()
        return ImportResult(created=created, duplicates=duplicates)

    def upload(self, path: str | Path, *, format: str | None = None, media: str | Path | None = None) -> ImportResult:
        """Send a JSONL / CSV / JSON file as it is, in one all-or-nothing import; with ``media``,
        a folder whose files the rows name (by their paths in it), sent together as one zip."""
        path = Path(path)
        packed: Path | None = None
        if media is not None:
            packed = media_zip(path, Path(media), format=format)
            path, format = packed, "zip"
        try:
            with path.open("rb") as handle:
                files = {"file": (path.name, handle, "application/octet-stream")}
                data = {"format": format} if format else None
                answer = self._client.request("POST", f"/projects/{self._project_id}/tasks", files=files, data=data)
        finally:
            if packed is not None:
                packed.unlink(missing_ok=True)
        return parse(ImportResult, answer.json())

    def get(self, task_id: int) -> dict[str, Any]:
        return self._client.request("GET", f"/tasks/{task_id}").json()

    def add_annotations(self, annotations: Iterable[dict[str, Any]], *, chunk_size: int = IMPORT_CHUNK,
                        on_progress: Progress | None = None) -> int:
        """Import answers made elsewhere: ``{"task": unique_id, "annotator": their id, "answer"}``.

        Sent in chunks, each all or nothing; returns how many were stored. A chunk is not
        retried on its own (a repeat would answer that the annotator already answered).
        """
        created = 0
        chunk: list[dict[str, Any]] = []

        def send() -> None:
            nonlocal created
            body = "\n".join(json.dumps(a, ensure_ascii=False) for a in chunk).encode()
            created += self._client.request(
                "POST", f"/projects/{self._project_id}/annotations", content=body, retry=False,
                headers={"content-type": "application/x-ndjson"},
            ).json()["created"]
            if on_progress is not None:
                on_progress(len(chunk))
            chunk.clear()

        for annotation in annotations:
            chunk.append(annotation)
            if len(chunk) >= chunk_size:
                send()
        if chunk:
            send()
        return created

    def list(self, *, status: str | None = None, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        return self._client.pages(f"/projects/{self._project_id}/tasks", page_size=page_size, status=status or None)
