"""Separation on a Ray cluster: ``ray.data`` holds the list of files (one block per file, so
each is its own task), ``map_batches`` runs them through a pool of actors that each load the
model once, and the outcomes stream back to the driver, which records them in the manifest
(:func:`deepsampler.batch.run.execute`). Stems are written by the actors, atomically, into the
output folder, which must be a path every node sees (a shared file system).

Fault tolerance is Ray Data's: an actor that dies is restarted and the file it held is tried
again (Ray Data's defaults for actor pools: ``max_restarts=-1``, ``max_task_retries=-1``; they
are no longer settable per call without a deprecation); a file that fails by itself (corrupt,
unreadable) is a ``failed`` outcome, not an error, so it never stops the run. A file that kills
the process every time it is read would be tried again without end; such a file is one that
crashes libsndfile itself, and ``deepsampler separate FILE`` shows it.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlparse

import numpy as np

from deepsampler.batch.job import Outcome, SeparationJob, separate_one
from deepsampler.batch.plan import Item
from deepsampler.errors import DeepSamplerError

INSTALL = "pip install 'deepsampler[cluster]'"
CONNECT_TIMEOUT = 5.0  # s to reach a given address before saying it does not answer


class SeparateFiles:
    """The actors' callable class: the model is loaded once per actor (``__init__``); each call
    separates the files of a batch, whole, and returns their outcomes as JSON."""

    def __init__(self, job: SeparationJob) -> None:
        from deepsampler.threads import set_threads

        set_threads(job.threads)
        self.job = job
        self.sep = job.make_separator(verify=True)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outcomes = [
            json.dumps(separate_one(self.sep, self.job, str(path), str(track)).to_dict())
            for path, track in zip(batch["path"], batch["track"], strict=True)
        ]
        return {"outcome": np.array(outcomes, dtype=object)}


def import_ray() -> Any:
    """``ray`` with its Data library, or one clear error naming the extra that installs it."""
    try:
        import ray
        import ray.data  # noqa: F401 - ray without [data] lacks it
    except ImportError:
        raise DeepSamplerError(f"--ray needs Ray with its Data library: {INSTALL}") from None
    return ray


def check_reachable(address: str) -> None:
    """Refuse at once an address where nothing listens (``ray.init`` would retry for a
    minute); ``auto`` and the like are left to Ray."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if not parsed.hostname or not parsed.port:
        return
    try:
        socket.create_connection((parsed.hostname, parsed.port), CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise DeepSamplerError(
            f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc}); start one "
            "with `ray start --head` or check the address"
        ) from None


def connect(address: str | None) -> bool:
    """Join the cluster at ``address`` or, without one, start a local Ray (every core); a Ray
    this process already joined is used as it is. True when this call joined or started one
    (the caller shuts it down at the end)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    if address:
        check_reachable(address)
        try:
            ray.init(address=address, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise DeepSamplerError(f"--ray {address}: cannot join the cluster ({exc})") from None
    else:
        # "local": a new Ray of this machine's cores, never one found running (ray.init()
        # alone would join the last cluster `ray start` made here)
        ray.init(address="local", include_dashboard=False, logging_level="ERROR")
    return True


def run_ray(
    job: SeparationJob,
    items: Sequence[Item],
    *,
    actors: int,
    gpus_per_actor: float = 0.0,
    address: str | None = None,
) -> Iterator[Outcome]:
    """Separate ``items`` with a pool of ``actors`` Ray actors (``gpus_per_actor`` GPUs each:
    use ``job.device = "cuda"`` with it); yield each outcome as it comes back."""
    if actors < 1:
        raise DeepSamplerError(f"--actors {actors}: use 1 or more")
    if gpus_per_actor < 0:
        raise DeepSamplerError(f"--gpus-per-actor {gpus_per_actor}: use 0 or more")
    if not items:
        return
    ray = import_ray()
    started = connect(address)
    context = ray.data.DataContext.get_current()
    saved = (context.max_errored_blocks, context.enable_progress_bars)
    # a block whose task raised (not a file's failure: that is an outcome) is dropped rather
    # than ending the run; execute() then records its file as failed
    context.max_errored_blocks = -1
    context.enable_progress_bars = False  # the catalogue's own bar says more
    data_log = logging.getLogger("ray.data")
    level = data_log.level
    data_log.setLevel(logging.ERROR)  # Ray Data's execution notes would break up the bar
    try:
        rows = [{"path": i.path, "track": i.track} for i in items]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            SeparateFiles,
            fn_constructor_kwargs={"job": job},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=max(1, job.threads),
            num_gpus=gpus_per_actor or None,
        )
        for row in dataset.iter_rows():
            yield Outcome.from_dict(json.loads(row["outcome"]))
    finally:
        context.max_errored_blocks, context.enable_progress_bars = saved
        data_log.setLevel(level)
        if started:
            ray.shutdown()
