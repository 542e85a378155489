"""Run the app under uvicorn, with a graceful SIGTERM: refuse new work, finish in-flight requests, exit 0.

uvicorn already stops accepting connections and waits for open requests on SIGTERM; the app is told
first (so requests arriving on kept-alive connections get 503 instead of being queued), and the signal
is not re-raised afterwards, so an orchestrator sees a clean exit after a complete drain. The app answers
503 to what is still unanswered ``drain_timeout_s`` after SIGTERM; uvicorn's own graceful-shutdown
timeout is set a little later, so it has nothing left to cancel (it would answer a plain-text 500).
"""

from __future__ import annotations

import logging
import math
import signal
import sys
from collections.abc import Callable
from types import FrameType

import uvicorn

from rewardkit.scoring import Scorer
from rewardkit.serve.app import create_app
from rewardkit.serve.settings import ServeSettings

log = logging.getLogger("rewardkit.serve")
SHUTDOWN_GRACE_S = 5  # after the app's drain deadline, time for its 503s to go out before uvicorn cancels


class GracefulServer(uvicorn.Server):
    """A uvicorn server that tells the app when shutdown begins and exits 0 after draining on SIGTERM."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_shutdown = on_shutdown

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_shutdown()
        if sig == signal.SIGTERM:
            self.should_exit = True  # not recorded: uvicorn would re-raise it after the drain (exit -15)
            return
        super().handle_exit(sig, frame)


def build_server(scorer: Scorer, settings: ServeSettings, *, log_level: str = "info",
                 access_log: bool = False) -> GracefulServer:
    """The uvicorn server for ``scorer`` (not started): call ``.run()``, or ``.serve()`` inside a loop."""
    app = create_app(scorer, settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level,
                            access_log=access_log, lifespan="on",
                            timeout_graceful_shutdown=math.ceil(settings.drain_timeout_s) + SHUTDOWN_GRACE_S)
    return GracefulServer(config, app.state.service.begin_shutdown)


def serve(scorer: Scorer, settings: ServeSettings, *, log_level: str = "info", access_log: bool = False) -> None:
    """Serve ``scorer`` until SIGTERM/SIGINT (blocking). Warns when listening beyond loopback without a key."""
    if not settings.loopback and settings.api_key is None:
        print(f"warning: listening on {settings.host} without an API key: anyone who can reach this port can "
              "use the model (pass --api-key-file)", file=sys.stderr)
    build_server(scorer, settings, log_level=log_level, access_log=access_log).run()
