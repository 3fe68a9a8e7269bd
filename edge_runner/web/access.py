"""Who may look: the access token that guards ``python -m edge_runner serve``.

The live view, its snapshots and the events show the inside of someone's home,
so a server that listens beyond this device needs a secret:

* The token comes from ``--token-file PATH`` (the Pi installer writes one) or,
  failing that, the environment variable ``EDGEKIT_TOKEN``. A file is preferred:
  a command line or an environment can be read by other processes of the same user.
* When a token is configured, every request needs it, whatever the route
  (page, static files, API, MJPEG stream, snapshots and any route added later):
  one ``before_request`` check on the Flask app, so blueprints are covered
  without doing anything. Only ``/healthz`` answers without it.
* API clients send ``Authorization: Bearer TOKEN``. A browser is asked once, by
  a small form (or a link with ``?token=TOKEN``); the server then sets an
  HttpOnly, SameSite=Strict cookie and redirects to the same page without the
  token in its address. The cookie holds an HMAC of the token, not the token.
* Wrong tokens are counted per client address (:mod:`edge_runner.web.throttle`): 5 within a
  minute lock the address out (429 with ``Retry-After``) for 30 s, doubling up to 5 minutes;
  a wrong session cookie counts too, a request without any token does not.
* A non-loopback ``--host`` without a token is refused (:class:`AccessError`,
  exit 2) unless ``--trusted-network`` says so explicitly.

Comparisons go through :func:`hmac.compare_digest` on SHA-256 digests (constant
time, and the same time for any length). The token is never logged, never put
in an error message and never shown by ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import quote, urlencode

from ..common.console import EXIT_USAGE
from .throttle import Throttle

logger = logging.getLogger(__name__)

TOKEN_ENV = "EDGEKIT_TOKEN"
COOKIE_NAME = "edgekit_session"
COOKIE_MAX_AGE_S = 30 * 24 * 3600
# Routes that answer without the token: a liveness probe for systemd, monitors and load balancers.
OPEN_PATHS = frozenset({"/healthz"})
MIN_TOKEN_CHARS = 16
TOKEN_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
_SESSION_CONTEXT = b"edgekit browser session v1"


class AccessError(ValueError):
    """A token that cannot be used, or a server that would be open to the network without one (exit 2)."""

    exit_status = EXIT_USAGE


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True)
class Token:
    """The server's access token.

    Attributes:
        value: the secret (printable ASCII, no spaces, at least ``MIN_TOKEN_CHARS``); hidden from ``repr``.
        origin: where it came from, for messages: ``"--token-file PATH"`` or ``"$EDGEKIT_TOKEN"``.
    """

    value: str = field(repr=False)
    origin: str = "a token"

    def __post_init__(self) -> None:
        problem = token_problem(self.value)
        if problem:
            raise AccessError(f"{self.origin}: {problem}")

    def matches(self, presented: str | None) -> bool:
        """Whether ``presented`` is the token, in constant time."""
        return presented is not None and hmac.compare_digest(_digest(presented), _digest(self.value))

    @property
    def session(self) -> str:
        """The browser cookie's value: an HMAC of the token, so the cookie never holds the token itself."""
        return hmac.new(self.value.encode("utf-8"), _SESSION_CONTEXT, hashlib.sha256).hexdigest()

    def matches_session(self, cookie: str | None) -> bool:
        return cookie is not None and hmac.compare_digest(_digest(cookie), _digest(self.session))


def token_problem(value: str) -> str | None:
    """What is wrong with a token (never quoting it), or ``None``."""
    if not value:
        return f"the token is empty; put one of at least {MIN_TOKEN_CHARS} characters there, e.g. from: {TOKEN_HINT}"
    if any(not 33 <= ord(ch) <= 126 for ch in value):
        return "the token must be printable ASCII without spaces (it travels in a header, a cookie and a URL)"
    if len(value) < MIN_TOKEN_CHARS:
        return f"the token has {len(value)} characters; at least {MIN_TOKEN_CHARS} are needed, e.g. from: {TOKEN_HINT}"
    return None


def load_token(token_file: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None) -> Token | None:
    """The token from ``--token-file`` (first line, surrounding whitespace dropped), else ``$EDGEKIT_TOKEN``, else ``None``.

    Raises:
        AccessError: the file cannot be read, or the token is empty, too short or has spaces.
    """
    environ = os.environ if environ is None else environ
    if token_file is not None:
        path = Path(token_file)
        origin = f"--token-file {path}"
        try:
            text = path.read_text(encoding="utf-8")
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise AccessError(f"{origin}: no such file (write a token into it, e.g. from: {TOKEN_HINT})") from None
        except IsADirectoryError:
            raise AccessError(f"{origin}: is a directory, not a file holding the token") from None
        except UnicodeDecodeError:
            raise AccessError(f"{origin}: not a text file") from None
        except OSError as exc:
            raise AccessError(f"{origin}: cannot read it ({exc.strerror})") from None
        lines = text.strip().splitlines()
        token = Token(lines[0].strip() if lines else "", origin)
        if mode & stat.S_IROTH:
            logger.warning("%s is readable by every user of this machine; chmod 600 it", origin)
        return token
    value = environ.get(TOKEN_ENV)
    if value is None or not value.strip():
        return None
    return Token(value.strip(), f"${TOKEN_ENV}")


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the server on this device (127.0.0.0/8, ::1, or a name that only resolves there).

    ``""``, ``0.0.0.0`` and ``::`` (every interface) and any other address are not loopback.
    """
    host = host.strip().strip("[]")
    if not host:
        return False
    try:
        return _address_is_loopback(host)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return False  # an unknown name cannot be bound anyway; refuse to call it safe
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(_address_is_loopback(address) for address in addresses)


def _address_is_loopback(text: str) -> bool:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def check_exposure(host: str, token: Token | None, trusted_network: bool) -> None:
    """Refuse to listen beyond this device without a token, unless the network is declared trusted.

    Raises:
        AccessError: one line naming ``--host`` and the two ways out.
    """
    if token is None and not trusted_network and not is_loopback(host):
        raise AccessError(
            f"--host {host or '(all interfaces)'} opens the camera and the API to the network, and no access token is set: "
            f"give --token-file FILE (or set ${TOKEN_ENV}), or pass --trusted-network to serve without one"
        )


# -- the Flask side -------------------------------------------------------------

_LOGIN_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgekit: access token</title>
<style>
body{{font:16px/1.45 system-ui,sans-serif;max-width:420px;margin:48px auto;padding:0 16px;color-scheme:light dark}}
input{{font:inherit;width:100%;padding:10px;margin:8px 0;box-sizing:border-box}}
button{{font:inherit;padding:10px 20px;border-radius:999px;border:0;background:#2f6fdf;color:#fff}}
.error{{color:#b3261e}}
</style></head><body>
<h1>edgekit</h1>
<p>This device's camera and photos are private. Enter its access token
(printed when it was installed; on the device: <code>sudo cat /etc/edgekit/token</code>).</p>
{message}
<form method="post" action="{action}">
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Open</button>
</form></body></html>
"""


def protect(app, token: Token, throttle: Throttle | None = None) -> None:
    """Require ``token`` on every route of the Flask ``app`` but ``OPEN_PATHS`` (one ``before_request`` check).

    ``throttle``: counts wrong tokens per client address (default: a :class:`~edge_runner.web.throttle.Throttle`).
    """
    from flask import Response, jsonify, redirect, request
    from markupsafe import escape

    throttle = throttle if throttle is not None else Throttle()

    def locked_out(seconds: int) -> Response:
        response = jsonify({"error": f"too many wrong access tokens from this address; try again in {seconds} s", "status": 429})
        response.status_code = 429
        response.headers["Retry-After"] = str(seconds)
        return response

    def wrong(response: Response) -> Response:
        seconds = throttle.failed(request.remote_addr)
        return locked_out(seconds) if seconds else response

    def right(response: Response | None) -> Response | None:
        throttle.succeeded(request.remote_addr)
        return response

    def login_page(message: str | None = None) -> Response:
        html = _LOGIN_PAGE.format(
            message=f'<p class="error" role="alert">{escape(message)}</p>' if message else "",
            action=escape(_local_path(request.path)),
        )
        response = Response(html, status=401, mimetype="text/html")
        response.headers["Content-Security-Policy"] = _LOGIN_CSP
        response.headers["Cache-Control"] = "no-store"
        return response

    def refusal(message: str) -> Response:
        response = jsonify({"error": message, "status": 401})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="edgekit"'
        return response

    def signed_in(location: str) -> Response:
        # 303: the browser follows with a GET, so a form POST is not repeated on reload.
        response = redirect(location, code=303)
        response.set_cookie(
            COOKIE_NAME, token.session, max_age=COOKIE_MAX_AGE_S, path="/",
            httponly=True, samesite="Strict", secure=request.is_secure,
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.before_request
    def require_token():
        if request.path in OPEN_PATHS:
            return None
        wait = throttle.retry_after(request.remote_addr)
        if wait:  # locked out: not even a right token is looked at
            return locked_out(wait)
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            if token.matches(credentials.strip()):
                return right(None)
            return wrong(refusal("wrong access token in the Authorization header"))
        if token.matches_session(request.cookies.get(COOKIE_NAME)):
            return right(None)
        if request.method in ("GET", "HEAD") and "token" in request.args:
            if not token.matches(request.args.get("token")):
                return wrong(login_page("That token is not right. Try again."))
            rest = urlencode([(key, value) for key, value in request.args.items(multi=True) if key != "token"])
            return right(signed_in(quote(_local_path(request.path)) + (f"?{rest}" if rest else "")))
        if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded" and "token" in request.form:
            if not token.matches(request.form.get("token")):
                return wrong(login_page("That token is not right. Try again."))
            return right(signed_in(_local_path(request.path)))
        stale = COOKIE_NAME in request.cookies  # a session cookie that is not this token's: a guess too
        if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
            return wrong(login_page()) if stale else login_page()
        answer = refusal(
            "this edgekit server needs its access token: send 'Authorization: Bearer TOKEN' "
            f"(the token is in the file given to the server's --token-file, or its ${TOKEN_ENV})"
        )
        return wrong(answer) if stale else answer


def _local_path(path: str) -> str:
    """``path`` as a same-site target: ``//evil.example`` must not become a redirect to another host."""
    return "/" + path.lstrip("/\\")
