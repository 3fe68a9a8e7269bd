"""The web page's live camera view (a Flask blueprint for ``serve --camera``).

Routes:
    ``GET /api/camera``            the live label, score, fps and any camera error (:meth:`LiveView.status`)
    ``GET /api/camera/frame.jpg``  the latest annotated frame
    ``GET /camera.mjpg``           the annotated frames as an MJPEG stream (``multipart/x-mixed-replace``)

Every viewer reads the one :class:`~edge_runner.web.live.LiveView` of the service;
at most ``--max-viewers`` streams are open at once, since each holds one of
waitress's threads for as long as it is watched. Without ``--camera`` each route
answers 404 with the usual ``{"error": ...}`` JSON.
"""

from __future__ import annotations

import threading
from typing import Any

CAMERA_OFF = "the camera is off: start the server with --camera [SOURCE]"
# How long one stream waits for a newer frame before checking whether it should end.
STREAM_POLL_S = 2.0
FRAME_TIMEOUT_S = 10.0


def create_blueprint(service: Any):
    """The blueprint for a :class:`~edge_runner.web.service.Service`; its ``live`` is ``None`` without ``--camera``."""
    from flask import Blueprint, Response, abort, jsonify

    blueprint = Blueprint("stream", __name__)
    viewers = threading.BoundedSemaphore(service.options.max_viewers)

    def live_view():
        if service.live is None:  # the application's HTTP error handler turns abort() into its JSON
            abort(404, description=CAMERA_OFF)
        return service.live

    @blueprint.get("/api/camera")
    def camera_state():
        live = live_view()
        live.touch()
        return jsonify(live.status())

    @blueprint.get("/api/camera/frame.jpg")
    def camera_frame():
        frame = live_view().wait_frame(0, timeout=FRAME_TIMEOUT_S)
        if frame is None:
            abort(503, description="no camera frame yet; try again in a moment")
        return Response(frame.jpeg, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})

    @blueprint.get("/camera.mjpg")
    def camera_stream():
        live = live_view()
        if not viewers.acquire(blocking=False):
            abort(
                503,
                description=f"too many live viewers (at most {service.options.max_viewers}); "
                "close another tab or use /api/camera/frame.jpg",
            )
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                viewers.release()

        def frames():
            seq = 0
            while not live.stopped and not released.is_set():
                frame = live.wait_frame(seq, timeout=STREAM_POLL_S)
                if frame is None:
                    continue
                seq = frame.seq
                head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\nX-Frame: {frame.seq}\r\n\r\n"
                yield head.encode("ascii") + frame.jpeg + b"\r\n"

        response = Response(frames(), mimetype="multipart/x-mixed-replace; boundary=frame")
        response.headers["Cache-Control"] = "no-store"
        # Called when the client goes away or the stream ends, even if no frame was sent.
        response.call_on_close(release)
        return response

    return blueprint
