"""The Python SDK: ``Client(url, token)`` over httpx. It never imports the server.

    from qistas.client import Client
    client = Client("http://127.0.0.1:8000", token)
    project = client.projects.create(name="Sentiment", task={"type": "classification", "labels": ["pos", "neg"]})
    project.tasks.add([{"data": {"text": "..."}, "unique_id": "r1"}], batch="first")
    stream = project.results(since="0.0")
    for result in stream:
        ...
    cursor = stream.cursor                     # where the next results(since=...) begins
    project.export(format="parquet", path="labels.parquet", completed=True)
    hook = client.webhooks.create(project.id, "https://example.com/hook", ["task.completed"])
    project.update(review=ReviewPolicy(below_confidence=0.9))   # a reviewer checks the unsure ones
    client.reviews.audit(task_id, accepted=False, reason="...")  # reopen a delivered task
    token = client.tokens.create(user.id, scope="annotate", expires_in_days=30)
    client.users.deactivate(user.id)           # its tokens revoked, its leases given back
    batch = project.generate(endpoints=[3], template={"user": "..."}, count=100).wait()  # synthetic data
    endpoint = client.model_endpoints.create(name="vllm", base_url="http://gpu-1:8000/v1", model="qwen")
    job = project.prelabel(endpoint=endpoint.id, template={"user": "Text: {text}"}).wait()  # pre-labels

Pass any sync httpx transport (``transport=``) to route requests elsewhere: a proxy, a
custom network stack, or a transport that simulates failures (the SDK's tests do).
"""

from qistas.client.client import Client, Project, ResultStream
from qistas.client.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    ServerError,
    TooLarge,
    TooManyAttempts,
    TransportError,
    Unauthorized,
    Unsupported,
)
from qistas.client.exports import ExportJob
from qistas.client.generation import GenerationBatch
from qistas.client.models import (
    Batch,
    Deactivated,
    Delivery,
    ExportInfo,
    ImportResult,
    ModelEndpoint,
    ModelUsage,
    PrelabelFailure,
    Rejection,
    Result,
    Review,
    ReviewedAnswer,
    ReviewLease,
    ReviewPolicy,
    ReviewState,
    TokenInfo,
    User,
    Webhook,
)
from qistas.client.prelabel import ModelEndpoints, PrelabelJob
from qistas.client.reviews import Reviews
from qistas.client.webhooks import verify_signature

__all__ = [
    "ApiError", "Batch", "Client", "Conflict", "Deactivated", "Delivery", "ExportInfo", "ExportJob", "Forbidden",
    "GenerationBatch", "ImportResult", "Invalid", "ModelEndpoint", "ModelEndpoints", "ModelUsage", "NotFound",
    "PrelabelFailure", "PrelabelJob", "Project", "RateLimited", "Rejection", "Result",
    "ResultStream", "Review", "ReviewLease", "ReviewPolicy", "ReviewState", "ReviewedAnswer", "Reviews", "ServerError",
    "TokenInfo", "TooLarge", "TooManyAttempts", "TransportError", "Unauthorized", "Unsupported", "User", "Webhook",
    "verify_signature",
]
