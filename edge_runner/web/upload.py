"""How the web API reads a request: the uploaded photo, its name, ``?top_k``, and the size limits.

An upload is a multipart field ``file`` or the raw bytes as the body (its name
then in the ``X-Filename`` header or ``?filename=``). Everything is held in
memory, bounded by ``--max-upload-mb``; a refusal is an :class:`UploadError`
that the application answers as ``{"error": message, "status": status}``.
"""

from __future__ import annotations

from urllib.parse import unquote

# Room for the multipart framing around a file of exactly --max-upload-mb.
MULTIPART_ALLOWANCE = 64 * 1024
# Bodies up to this multiple of the limit are read and answered with a JSON 413;
# beyond it waitress refuses them itself, before the application sees them.
SERVER_BODY_FACTOR = 4
MAX_NAME_CHARS = 200


class UploadError(Exception):
    """A request the API refuses; becomes ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def display_name(raw: str | None, *, percent_encoded: bool = False) -> str:
    """The client's file name, cut to its last path component and printable characters, for display only.

    ``percent_encoded``: the name came in a header (``X-Filename``), where names
    outside Latin-1 have to be percent-encoded.
    """
    if not raw:
        return "upload"
    name = (unquote(raw) if percent_encoded else raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()[:MAX_NAME_CHARS]
    return name or "upload"


def format_size(n: int | float) -> str:
    """``"12.3 MB"``, ``"512 KB"`` or ``"100 bytes"`` (binary units)."""
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{int(n)} bytes"


def too_large_message(size: int | None, limit: int) -> str:
    """Why an upload of ``size`` bytes (``None``: not known) is refused under a ``limit`` of bytes."""
    got = f"the upload is {format_size(size)}" if size else "the upload is too large"
    return f"{got}; the limit is {format_size(limit)} (server option --max-upload-mb)"


def in_memory_request_class(base: type) -> type:
    """A subclass of Flask's request class ``base`` that keeps multipart file parts in memory.

    They are bounded by the upload limit, so no temp file is ever written.
    """
    import io

    class InMemoryRequest(base):  # type: ignore[misc, valid-type]
        def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
            return io.BytesIO()

    return InMemoryRequest


def read_upload(request, limit: int) -> tuple[bytes, str]:
    """The photo's bytes (1 to ``limit``) and its display name, from a Flask ``request``.

    Raises:
        UploadError: 400 for no file or an empty one, 413 for more than ``limit`` bytes.
    """
    if request.mimetype == "multipart/form-data":
        storage = request.files.get("file")
        if storage is None:  # a client that named the field otherwise: take its first file
            storage = next(iter(request.files.values()), None)
        if storage is None:
            raise UploadError(400, "no file in the form: send the photo in a multipart field named 'file'")
        data = storage.read(limit + 1)
        name = display_name(storage.filename)
    else:
        data = request.get_data(cache=False)
        name = display_name(request.headers.get("X-Filename") or request.args.get("filename"), percent_encoded=True)
    if len(data) > limit:
        raise UploadError(413, f"{name}: {too_large_message(len(data), limit)}")
    if not data:
        raise UploadError(
            400, f"{name}: empty upload (0 bytes); send a photo as the multipart field 'file' or as the request body"
        )
    return data, name


def parse_top_k(raw: str | None, default: int, n_labels: int) -> int:
    """``?top_k``: an integer from 1 to ``n_labels``; ``default`` when absent.

    Raises:
        UploadError: 400 naming the allowed range and what was received.
    """
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= n_labels:
        raise UploadError(400, f"top_k must be an integer from 1 to {n_labels}, received {raw!r}")
    return value
