"""What every page needs: the signed-in user, the CSRF check, rendering with the catalogue."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import AfterValidator
from starlette.datastructures import FormData

from qistas.api.deps import MAX_ID
from qistas.db.models import User
from qistas.errors import Forbidden, NotFound
from qistas.web.i18n import Translator, language_of
from qistas.web.jsonview import json_html

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "svg"]),
                  trim_blocks=True, lstrip_blocks=True)
# JSON for people to read, escaped and bidi-safe (``tojson`` is for script data blocks).
env.filters["pretty"] = json_html


def _existing_id(value: int) -> int:
    # No row has an id outside 1..2**63-1 (the drivers could not even bind it): a page for
    # such an id is a page for a missing object. NotFound is no ValueError, so it passes
    # through validation to the pages' error handler.
    if not 1 <= value <= MAX_ID:
        raise NotFound("not found")
    return value


PageId = Annotated[int, AfterValidator(_existing_id)]
# A list page's position and search: the id its page starts after, and a part of an email address.
PageAfter = Annotated[int | None, Query(ge=0, le=MAX_ID)]
PageEmail = Annotated[str, Query(max_length=320)]


def page_links(address: str, *, email: str, after: int | None, shown: list[int], size: int,
               fragment: str = "") -> tuple[str | None, str | None]:
    """The next and the first page's addresses of a list shown ``size`` at a time in id order,
    now the ``shown`` ids after ``after`` (None: from the start), searched for ``email``; None
    where there is no such page (the last page has no next, the first no first)."""
    search = {"email": email} if email else {}
    following = (f"{address}?{urlencode({**search, 'after': shown[-1]})}{fragment}"
                 if len(shown) == size else None)
    first = f"{address}{'?' + urlencode(search) if search else ''}{fragment}" if after is not None else None
    return following, first


class LoginRequired(Exception):
    """A page needs a signed-in user; answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def translator(request: Request) -> Translator:
    return Translator(language_of(request))


def page_user(request: Request) -> User:
    user: User | None = getattr(request.state, "session_user", None)
    if user is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return user


async def csrf_form(request: Request) -> FormData:
    """The posted form, once its CSRF token has been checked against the session's."""
    form = await request.form()
    expected = getattr(request.state, "csrf_token", None)
    given = form.get("csrf")
    if not expected or not isinstance(given, str) or not hmac.compare_digest(given, expected):
        raise Forbidden("the form's CSRF token is missing or wrong; reload the page and try again",
                        details={"field": "csrf"})
    return form


def safe_next(value: str | None, default: str = "/") -> str:
    """Only a path on this site: never ``//elsewhere`` or ``https://elsewhere``."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    t = translator(request)
    user = getattr(request.state, "session_user", None)
    html = env.get_template(template).render(
        t=t, user=user, csrf=getattr(request.state, "csrf_token", ""), path=request.url.path,
        query=request.url.query, **context,
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


PageUser = Annotated[User, Depends(page_user)]
CheckedForm = Annotated[FormData, Depends(csrf_form)]


def form_str(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default
