"""``deepsampler serve``: a local web app over the :class:`~deepsampler.separator.Separator` API.

``create_app(Settings(...))`` builds the FastAPI app (:mod:`deepsampler.web.app`): a page to
separate files (jobs queued in SQLite, :mod:`.jobs`, run by :mod:`.worker`) and to separate the
microphone live over a websocket (:mod:`.live`). Needs the ``web`` extra (fastapi, uvicorn).
"""

from deepsampler.web.settings import Settings

__all__ = ["Settings", "create_app"]


def create_app(settings: Settings | None = None):
    """The FastAPI app (imported here on use, so ``Settings`` needs no fastapi)."""
    from deepsampler.web.app import create_app as build

    return build(settings)
