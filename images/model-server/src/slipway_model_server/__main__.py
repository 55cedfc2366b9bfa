"""Process entry point: `python -m slipway_model_server`.

Reads the settings (a bad one prints which variable is wrong and exits with status 2), sets up
logging, and runs the ASGI app on uvicorn with uvloop and httptools. On SIGTERM readiness
turns false at once; after `SLIPWAY_SHUTDOWN_DELAY_S` (time for Kubernetes to stop routing here)
uvicorn's graceful shutdown closes the listener, requests already received run to completion (up
to `SLIPWAY_DRAIN_TIMEOUT_S`), the lifespan shutdown drains the batcher, and the process exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn

from .app import ModelServer
from .settings import SettingsError, load_settings

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"slipway-model-server: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    app = ModelServer(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=settings.access_log,
        log_level=settings.log_level,
        server_header=False,
        timeout_graceful_shutdown=int(settings.drain_timeout_s + 0.999),
    )
    DrainingServer(config, app, settings.shutdown_delay_s).run()
    return 0


class DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the app at SIGTERM/SIGINT so it can start draining at once.

    uvicorn only runs the lifespan shutdown after in-flight requests finished; requests held in
    a batch window must be released before that, and readiness must turn false immediately.
    """

    def __init__(self, config: uvicorn.Config, app: ModelServer, delay_s: float = 0.0) -> None:
        super().__init__(config)
        self._app = app
        self._delay_s = delay_s
        self._stopping: threading.Timer | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Like uvicorn's, but a drained shutdown exits 0 instead of re-raising the signal."""
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.request_drain()
        if self._delay_s > 0 and self._stopping is None:
            # Keep serving (not ready) while Kubernetes takes the pod out of its endpoints.
            self._stopping = threading.Timer(self._delay_s, super().handle_exit, (sig, None))
            self._stopping.daemon = True
            self._stopping.start()
            return
        super().handle_exit(sig, frame)


if __name__ == "__main__":
    sys.exit(main())
