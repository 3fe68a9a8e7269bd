"""``python -m edge_runner deploy MODEL --url URL``: send a model to a running ``serve --deploy-dir DIR``.

    python -m edge_runner deploy MODEL.tflite --url http://pi.local:8000 [--token-file FILE] [--json]
    python -m edge_runner deploy --rollback --url http://pi.local:8000

The device checks the model (TFLite, embedded contract, one inference) before it switches; a refused model
leaves the old one running. Prints the new model's sha256 and how long the switch took (``--json``: the
server's answer plus ``elapsed_s``, one object). The token comes from ``--token-file`` or ``$EDGEKIT_TOKEN``,
as for ``serve``. Standard library only (urllib).

Exit status: 0 switched (or already current), 1 the device is unreachable or refused (401, 413, 422, 409, …),
2 usage errors (a missing model file). Errors are one ``edge_runner deploy: error: …`` line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Sequence

from ..common.argtypes import positive_float
from ..common.console import EXIT_FAILED, EXIT_OK, PROG, Parser, UsageError, parse_args, report_error
from ..web.access import TOKEN_ENV, load_token

DEPLOY_PROG = f"{PROG} deploy"


class DeployFailed(RuntimeError):
    """The device could not be reached, or it refused (exit 1)."""

    exit_status = EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m edge_runner deploy",
        error_prog=DEPLOY_PROG,
        description="Send a model to a running `python -m edge_runner serve --deploy-dir DIR`, which checks it, "
        "switches to it without a restart and keeps the previous one; or roll back to the previous one.",
        epilog="Exit status: 0 switched, 1 the device is unreachable or refused the model, 2 usage error.",
    )
    parser.add_argument("model", nargs="?", type=Path, metavar="MODEL.tflite", help="the model to send (from `python -m convert export`)")
    parser.add_argument("--url", required=True, metavar="URL", help="the device's address, e.g. http://raspberrypi.local:8000")
    parser.add_argument("--rollback", action="store_true", help="switch the device back to its previous model instead")
    parser.add_argument("--token-file", type=Path, metavar="FILE",
                        help=f"the device's access token (first line of FILE); default: ${TOKEN_ENV} if set, else none")
    parser.add_argument("--json", action="store_true", help="print the server's answer as one JSON object")
    parser.add_argument("--timeout", type=positive_float, default=120.0, metavar="SECONDS",
                        help="give up after this long (default: %(default)s)")
    return parser


def _request(args: argparse.Namespace) -> urllib.request.Request:
    base = args.url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise UsageError(f"--url must start with http:// or https://, received {args.url!r}")
    headers = {"Accept": "application/json"}
    token = load_token(args.token_file)
    if token is not None:
        headers["Authorization"] = f"Bearer {token.value}"
    if args.rollback:
        if args.model is not None:
            raise UsageError("give either MODEL or --rollback, not both")
        return urllib.request.Request(f"{base}/api/model/rollback", data=b"", headers=headers, method="POST")
    if args.model is None:
        raise UsageError("MODEL is required (or --rollback)")
    try:
        data = args.model.read_bytes()
    except OSError as exc:
        raise UsageError(f"{args.model}: cannot read it ({exc.strerror or exc})") from None
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"; filename="{args.model.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    return urllib.request.Request(f"{base}/api/model", data=body, headers=headers, method="POST")


def send(request: urllib.request.Request, timeout: float) -> dict:
    """The server's JSON answer; raises ``DeployFailed`` with one line for every failure."""
    where = request.full_url.rsplit("/api/", 1)[0]
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error") or exc.reason
        except (ValueError, AttributeError, OSError):
            message = exc.reason
        hint = {401: " (give the device's token with --token-file FILE or $EDGEKIT_TOKEN)",
                404: " (is the device's serve started with --deploy-dir DIR?)"}.get(exc.code, "")
        if "--token-file" in str(message) or "--deploy-dir" in str(message):
            hint = ""  # the server already says it
        raise DeployFailed(f"{where}: {exc.code}: {message}{hint}") from None
    except urllib.error.URLError as exc:
        raise DeployFailed(f"{where}: cannot reach the device ({getattr(exc.reason, 'strerror', None) or exc.reason})") from None
    except (OSError, ValueError) as exc:  # a timeout, a reset connection, an answer that is not JSON
        raise DeployFailed(f"{where}: no usable answer ({exc})") from None


def main(argv: Sequence[str] | None = None) -> int:
    """``deploy``'s entry point; returns the exit status."""
    parser = build_parser()
    args = parse_args(parser, argv)
    if isinstance(args, int):
        return args
    try:
        request = _request(args)
        started = time.perf_counter()
        answer = send(request, args.timeout)
        elapsed = time.perf_counter() - started
    except Exception as exc:  # usage, access and network errors carry their exit status
        return report_error(exc, DEPLOY_PROG, parser=parser)
    if args.json:
        print(json.dumps({**answer, "elapsed_s": round(elapsed, 3)}))
    elif answer.get("unchanged"):
        print(f"already current: sha256 {answer['sha256']} ({elapsed:.2f} s)")
    else:
        labels = f"; labels now {', '.join(answer['labels'])}" if answer.get("labels_changed") else ""
        what = "rolled back to" if args.rollback else "deployed"
        print(f"{what} sha256 {answer['sha256']}: switched in {answer['switch_s']:.3f} s after loading in "
              f"{answer['load_s']:.3f} s ({elapsed:.2f} s in all){labels}")
    sys.stdout.flush()
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
