"""The app under uvicorn in a background thread, for the browser tests and the screenshot
script (``deepsampler serve`` runs uvicorn in the foreground instead)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from deepsampler.web.settings import Settings


@contextmanager
def serve_in_thread(settings: Settings, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve the app until the block ends; yields its base URL (port 0: a free one)."""
    import uvicorn

    from deepsampler.web.app import create_app

    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="deepsampler-web-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the web server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
