"""Separation on one machine: in this process, or in a pool of N worker processes that each
load the model once and run one torch thread by default (N files at a time beat N threads on
one file: a chunk's forward pass splits poorly across threads, see ``deepsampler.threads``).

The pool is a plain one over pipes rather than ``concurrent.futures``: the driver knows which
file each worker holds, so a worker that dies (killed, out of memory) fails that file alone,
a new worker takes its place, and nothing hangs.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepsampler.batch.job import Outcome, SeparationJob, one_line, separate_one, worker_name
from deepsampler.batch.plan import Item
from deepsampler.errors import DeepSamplerError

if TYPE_CHECKING:
    from deepsampler.separator import Separator

STOP_WAIT = 10.0  # s a stopped worker gets to remove its partial files before SIGKILL


def run_inline(sep: Separator, job: SeparationJob, items: Sequence[Item]) -> Iterator[Outcome]:
    """Separate ``items`` one after the other in this process, with a loaded separator."""
    for item in items:
        yield separate_one(sep, job, item.path, item.track)


def _worker_main(job: SeparationJob, conn: Connection) -> None:
    """A pool worker: load the model once, then separate each (path, track) it is sent until
    it gets None or the driver is gone."""
    from deepsampler.interrupts import install_stop_handlers

    # Ctrl-C reaches every process of the terminal's group: the driver alone handles it and
    # stops the workers with SIGTERM, which (as Ctrl-C would) removes their partial stems
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    install_stop_handlers()
    try:
        from deepsampler.threads import set_threads

        set_threads(job.threads)
        sep = job.make_separator()
        conn.send(("ready", worker_name()))
        while True:
            task = conn.recv()
            if task is None:
                return
            conn.send(("outcome", separate_one(sep, job, *task).to_dict()))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):  # driver gone, or stopped
        return
    except Exception as exc:  # noqa: BLE001 - the model did not load: tell the driver why
        conn.send(("error", one_line(exc)))


@dataclass
class _Worker:
    process: Any  # multiprocessing.Process of the pool's context
    conn: Connection
    current: Item | None = None


def _context() -> Any:
    """forkserver where there is one (each worker forks from a server that has imported torch
    and the model code once: a worker starts in about a tenth of a second, where spawn
    re-imports torch), else spawn. Never plain fork: the driver may hold torch's threads."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["deepsampler.batch.local", "deepsampler.separator"])
        return ctx
    return multiprocessing.get_context("spawn")


def _start(ctx: Any, job: SeparationJob) -> _Worker:
    mine, theirs = ctx.Pipe()
    process = ctx.Process(target=_worker_main, args=(job, theirs), daemon=True)
    process.start()
    theirs.close()  # our copy of the worker's end: without it we would never see EOF
    return _Worker(process, mine)


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"


def _clean_after(job: SeparationJob, track: str) -> None:
    """Remove what a killed worker left of a file: its partial stems (it could not) and its
    track folder if that is empty now."""
    from deepsampler.atomic import remove_stale_partials

    folder = Path(job.out_dir) / track
    for stem in job.stems:
        remove_stale_partials(folder / f"{stem}.{job.fmt}")
    try:
        folder.rmdir()  # only if empty
    except OSError:
        pass


def _stop(workers: list[_Worker]) -> None:
    """SIGTERM every worker (it removes its partial files), SIGKILL what still runs after
    STOP_WAIT seconds."""
    for w in workers:
        if w.process.is_alive():
            w.process.terminate()
    for w in workers:
        w.process.join(STOP_WAIT)
        if w.process.is_alive():
            w.process.kill()
            w.process.join()
        w.conn.close()


def _give(w: _Worker, queue: deque[Item]) -> None:
    """Send ``w`` the next file; one it cannot take (it just died) goes back to the queue and
    the worker's sentinel reports the death."""
    item = queue.popleft()
    try:
        w.conn.send((item.path, item.track))
        w.current = item
    except OSError:  # BrokenPipeError: the worker is gone
        queue.appendleft(item)


def _finish(w: _Worker) -> None:
    """No more work: let ``w`` leave on its own, stop it if it does not."""
    try:
        w.conn.send(None)
        w.process.join(STOP_WAIT)
    except OSError:
        pass
    _stop([w])


def run_pool(job: SeparationJob, items: Sequence[Item], jobs: int) -> Iterator[Outcome]:
    """Separate ``items`` with ``jobs`` worker processes; yield each outcome as it comes. A
    worker that dies fails the file it held and is replaced; workers that die before doing any
    file (more than ``jobs`` times) end the run with an error."""
    if not isinstance(jobs, int) or jobs < 1:
        raise DeepSamplerError(f"--jobs {jobs}: use 1 or more worker processes")
    ctx = _context()
    queue = deque(items)
    workers = [_start(ctx, job) for _ in range(min(jobs, len(queue)))]
    idle_deaths = 0
    try:
        while workers:
            ready = set(wait([w.conn for w in workers] + [w.process.sentinel for w in workers]))
            for w in list(workers):
                message = None
                if w.conn in ready:
                    try:
                        message = w.conn.recv()
                    except (EOFError, OSError):
                        message = None  # it died: its sentinel says how, below
                if message is None and w.process.sentinel not in ready and w.conn not in ready:
                    continue
                if message is not None:
                    kind, payload = message
                    if kind == "error":
                        raise DeepSamplerError(f"a worker could not load the model: {payload}")
                    w.current = None
                    # the next file first, so the worker separates while the outcome is recorded
                    if queue:
                        _give(w, queue)
                    else:
                        _finish(w)
                        workers.remove(w)
                    if kind == "outcome":
                        yield Outcome.from_dict(payload)
                    continue
                w.process.join()  # dead: reap it, fail what it held, start another
                workers.remove(w)
                w.conn.close()
                if w.current is not None:
                    _clean_after(job, w.current.track)
                    yield Outcome(
                        w.current.path,
                        w.current.track,
                        "failed",
                        error=f"the worker process separating it died "
                        f"({_death(w.process.exitcode)})",
                    )
                else:
                    idle_deaths += 1
                    if idle_deaths > jobs:
                        raise DeepSamplerError(
                            f"worker processes die before separating anything "
                            f"({_death(w.process.exitcode)}); try --jobs 1 or separate without "
                            "--jobs to see why"
                        )
                if queue:
                    workers.append(_start(ctx, job))
    finally:
        _stop(workers)
