"""The Python SDK: ``Client(url, token)`` over httpx. It never imports the server.

    from qistas.client import Client
    client = Client("http://127.0.0.1:8000", token)
    project = client.projects.create(name="Sentiment", task={"type": "classification", "labels": ["pos", "neg"]})
    project.tasks.add([{"data": {"text": "..."}, "unique_id": "r1"}])
    for result in project.results():
        ...

Pass ``transport=httpx.ASGITransport(app)`` (or any httpx transport) to talk to an app in
the same process.
"""

from qistas.client.client import Client, Project
from qistas.client.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TooLarge,
    Unauthorized,
)

__all__ = [
    "ApiError", "Client", "Conflict", "Forbidden", "Invalid", "NotFound", "Project", "TooLarge", "Unauthorized",
]
