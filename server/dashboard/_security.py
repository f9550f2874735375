"""Who may use the dashboard: HTTP Basic with the server's access key when it has one, and a
CSRF token (double-submit cookie, and the request's Origin checked) on every action."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from urllib.parse import urlsplit

from durably.server._sigv4 import AccessKey
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

CSRF_COOKIE = "durably_csrf"
CSRF_FIELD = "csrf"


def refused_login(request: Request, access_key: AccessKey | None) -> Response | None:
    """A 401 unless the request carries the access key id and secret (none needed without a key)."""
    if access_key is None:
        return None
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        if hmac.compare_digest(user.encode(), access_key.access_key_id.encode()) and \
                hmac.compare_digest(password.encode(), access_key.secret_access_key.encode()):
            return None
    return PlainTextResponse("sign in with the server's access key id (user) and secret access key (password)",
                             status_code=401, headers={"WWW-Authenticate": 'Basic realm="durably", charset="UTF-8"'})


def csrf_token(request: Request) -> str:
    """The token of this browser (its cookie's), or a new one that the response must set."""
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)


def set_csrf_cookie(response: Response, token: str) -> None:
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")


def refused_action(request: Request, submitted: str | None) -> Response | None:
    """A 403 unless the form carries this browser's token and comes from this server's pages."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        return PlainTextResponse("the form's CSRF token is missing or wrong: reload the page and try again",
                                 status_code=403)
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        return PlainTextResponse(f"an action from another site ({origin}) is refused", status_code=403)
    return None
