"""Stop signals: SIGTERM and SIGHUP take the same path as Ctrl-C.

Python turns Ctrl-C (SIGINT) into :class:`KeyboardInterrupt`, which every writer in DeepSampler
already handles (unfinished outputs are removed, a live recording is finalised). SIGTERM, what
``kill``, ``timeout``, systemd and container runtimes send, would otherwise end the process at
once and leave hidden ``.partial`` files behind. :func:`install_stop_handlers` makes it raise
:class:`Terminated`, a ``KeyboardInterrupt``, so both take one path. :func:`deferred_stops`
holds a stop back while a block that must not be cut (finalising a recording) runs.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = tuple(
    s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s
)


class Terminated(KeyboardInterrupt):
    """A stop signal other than Ctrl-C arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def stop_name(exc: BaseException) -> str:
    """``SIGTERM`` / ``SIGHUP`` for a :class:`Terminated`, ``Ctrl-C`` for other interrupts."""
    return exc.name if isinstance(exc, Terminated) else "Ctrl-C"


def exit_status(exc: KeyboardInterrupt) -> int:
    """The shell's convention: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT)


def _in_main_thread() -> bool:
    # signal handlers can only be set from the main thread
    return threading.current_thread() is threading.main_thread()


def install_stop_handlers() -> None:
    """SIGTERM and SIGHUP raise :class:`Terminated` in the main thread from now on."""
    if _in_main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, _raise_terminated)


@contextmanager
def deferred_stops(reraise: bool = True) -> Iterator[list[int]]:
    """Within the block, Ctrl-C, SIGTERM and SIGHUP are recorded (in the yielded list) instead
    of raised; with ``reraise`` the first one is raised when the block has finished. Either way
    no stop cuts the block short."""
    received: list[int] = []
    if not _in_main_thread():
        yield received
        return

    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    signums = (signal.SIGINT, *STOP_SIGNALS)
    previous = {s: signal.signal(s, record) for s in signums}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received and reraise:
        raise KeyboardInterrupt() if received[0] == signal.SIGINT else Terminated(received[0])


def signal_name(signum: int) -> str:
    """``Ctrl-C`` for SIGINT, else the signal's name (``SIGTERM``)."""
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
