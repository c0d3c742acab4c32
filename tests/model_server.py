"""An OpenAI-compatible chat-completions server for tests, on 127.0.0.1, with deterministic
answers.

``POST /v1/chat/completions`` reads the last message's content, which ends with
``<mode> <label>`` (a template ``"Text: {text}"`` over data ``{"text": "ok positive"}``), and
answers by the mode:

- ``ok``: ``{"label": <label>, "score": 0.9}`` as the message content, with usage 10 / 5 tokens;
- ``slow``: the same after ``SLOW_SECONDS``;
- ``hang``: nothing until the server stops (beyond any test's timeout);
- ``flaky``: 500 the first time this content is asked, then ``ok``;
- ``limited``: 429 with ``Retry-After: 1`` the first time, then ``ok``;
- ``html``: 200 with an HTML page;
- ``outside``: ``ok`` with the label ``banana``;
- ``malformed``: 200, a chat completion whose content is not JSON;
- ``gen``: ``{"candidate": <the content before "gen <label>">}`` (a generated item; a label
  other than ``-`` is its ``prompt`` too);
- ``text``: plain text, not JSON: the content before ``text <label>``, then `` — <model>``
  (each endpoint of a comparison answers differently).

``received`` keeps every request; ``peak`` is, per ``model`` asked, the most requests that
were in flight at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SLOW_SECONDS = 0.3
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


@dataclass
class Asked:
    at: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    mode: str


@dataclass
class ModelServer:
    url: str
    received: list[Asked] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def asked(self, mode: str) -> list[Asked]:
        with self.lock:
            return [a for a in self.received if a.mode == mode]


def _completion(content: str) -> bytes:
    return json.dumps({
        "id": "chatcmpl-test", "object": "chat.completion", "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": USAGE,
    }).encode()


class _Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


@contextmanager
def model_server() -> Iterator[ModelServer]:
    state: dict[str, ModelServer] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        body_text = ""
        model = ""
        counted = False

        def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
            found = state["server"]
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            content = body["messages"][-1]["content"]
            mode, label = content.split()[-2:]
            self.body_text = content.rsplit(maxsplit=2)[0] if len(content.split()) > 2 else ""
            self.model = body["model"]
            with found.lock:
                headers = {k.lower(): v for k, v in self.headers.items()}
                found.received.append(Asked(time.monotonic(), self.path, headers, body, mode))
                found.seen[content] = times = found.seen.get(content, 0) + 1
                model = body["model"]
                found.in_flight[model] = found.in_flight.get(model, 0) + 1
                found.peak[model] = max(found.peak.get(model, 0), found.in_flight[model])
            self.counted = True
            try:
                self._answer(found, mode, label, times)
            finally:
                self._finished(found)

        def _finished(self, found: ModelServer) -> None:
            """Counted out once, before the answer is written: a client that has the answer may
            ask again at once, and its next request must not overlap this one in ``peak``."""
            if self.counted:
                self.counted = False
                with found.lock:
                    found.in_flight[self.model] -= 1

        def _answer(self, found: ModelServer, mode: str, label: str, times: int) -> None:
            if self.path != "/v1/chat/completions":
                return self._send(404, b'{"error": "not found"}')
            if mode == "hang":
                found.stopped.wait(30)
                return None
            if mode == "slow":
                found.stopped.wait(SLOW_SECONDS)
            if mode == "flaky" and times == 1:
                return self._send(500, b'{"error": "overloaded"}')
            if mode == "limited" and times == 1:
                return self._send(429, b'{"error": "slow down"}', {"Retry-After": "1"})
            if mode == "html":
                return self._send(200, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
            if mode == "malformed":
                return self._send(200, _completion('{"label": "positive"'))
            if mode == "gen":
                item = {"candidate": self.body_text, **({"prompt": label} if label != "-" else {})}
                return self._send(200, _completion(json.dumps(item, ensure_ascii=False)))
            if mode == "text":
                return self._send(200, _completion(f"{self.body_text} — {self.model}"))
            answer = {"label": "banana" if mode == "outside" else label, "score": 0.9}
            return self._send(200, _completion(json.dumps(answer)))

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> None:
            self._finished(state["server"])
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    found = ModelServer(url=f"http://127.0.0.1:{server.server_address[1]}")
    state["server"] = found
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.stopped.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
