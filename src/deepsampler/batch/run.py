"""The one place a run's outcomes are recorded: each is appended to the manifest as it arrives
(whichever runner made it), the catalogue's progress bar moves, and a :class:`Summary` is
kept."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from deepsampler.batch.job import Outcome, SeparationJob
from deepsampler.batch.manifest import Manifest, now_utc
from deepsampler.batch.plan import Item, Plan

LOST = "no result came back: its worker died every time it was tried"


@dataclass
class Summary:
    """What a run did, for its last line and its exit status."""

    files: int = 0  # inputs in the catalogue
    done: int = 0  # separated by this run
    skipped: int = 0  # complete from an earlier run
    failed: int = 0  # failed in this run
    failed_earlier: int = 0  # failed in an earlier run, not retried
    audio_seconds: float = 0.0  # s of audio separated by this run
    wall_seconds: float = 0.0  # s from the first file started to the last recorded
    failures: list[tuple[str, str]] = field(default_factory=list)  # (input, error)

    @property
    def throughput(self) -> float:
        """Hours of audio separated per hour of wall time (0 when nothing was done)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Every file of the catalogue is separated now."""
        return not self.failed and not self.failed_earlier

    def line(self) -> str:
        """One line: counts, hours of audio, wall time, throughput."""
        text = (
            f"{self.files} file(s): {self.done} separated, {self.skipped} already complete, "
            f"{self.failed} failed | {self.audio_seconds / 3600:.3f} h of audio in "
            f"{self.wall_seconds:.1f} s"
        )
        if self.done:
            text += f" ({self.throughput:.1f} h of audio per hour)"
        if self.failed_earlier:
            text += f" | {self.failed_earlier} failed earlier, not tried again (--retry-failed)"
        return text


def error_line(path: str, error: str | None) -> str:
    """``PATH: what went wrong``, once: most errors already start with their file's path."""
    error = error or "failed"
    return error if error.startswith(path) else f"{path}: {error}"


def _record(item: Item, outcome: Outcome, job: SeparationJob) -> dict[str, Any]:
    """The manifest line of one outcome."""
    return {
        "key": item.key,
        **item.identity,
        "track": item.track,
        "model": job.model_name,
        "model_digest": job.digest,
        "options": job.options(),
        "status": outcome.status,
        "outputs": outcome.outputs,
        "error": outcome.error,
        "audio_seconds": round(outcome.audio_seconds or item.audio_seconds, 3),
        "seconds": round(outcome.seconds, 3),
        "worker": outcome.worker,
        "clipped_samples": outcome.clipped,
        "finished": now_utc(),
    }


def _bar(plan: Plan, enabled: bool):
    """The catalogue's bar: hours of audio done of those to do, with an ETA, and files."""
    if not enabled or not plan.todo:
        return None
    from tqdm import tqdm

    hours = plan.todo_seconds / 3600
    return tqdm(
        total=hours or None,
        unit="h",
        desc="catalogue",
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.3f}/{total:.3f} h of audio "
        "[{elapsed}<{remaining}]{postfix}",
        dynamic_ncols=True,
    )


def execute(
    plan: Plan,
    outcomes: Iterable[Outcome],
    manifest: Manifest,
    job: SeparationJob,
    *,
    progress: bool = False,
    note: Callable[[str], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Summary:
    """Record every outcome of ``plan.todo`` as it arrives from a runner; files the runner never
    reported (a task that kept killing its worker) are recorded as failed at the end.

    ``note`` gets one line per failed file; ``on_outcome`` sees every outcome after it is
    recorded (the CLI plots, tests kill workers from it).
    """
    items = {i.track: i for i in plan.todo}
    summary = Summary(
        files=len(plan.todo) + len(plan.complete) + len(plan.failed_earlier),
        skipped=len(plan.complete),
        failed_earlier=len(plan.failed_earlier),
    )
    bar = _bar(plan, progress)

    def say(line: str) -> None:
        if bar is not None:
            bar.write(line, file=sys.stderr)  # above the bar, which stays whole
        elif note is not None:
            note(line)

    start = time.perf_counter()
    pending = dict(items)

    def record(outcome: Outcome) -> None:
        item = pending.pop(outcome.track)
        manifest.append(_record(item, outcome, job))
        if outcome.status == "done":
            summary.done += 1
            summary.audio_seconds += outcome.audio_seconds
        else:
            summary.failed += 1
            summary.failures.append((item.path, outcome.error or "failed"))
            say(f"deepsampler: error: {error_line(item.path, outcome.error)}")
        if bar is not None:
            bar.update(item.audio_seconds / 3600)
            bar.set_postfix_str(
                f"files {summary.done + summary.failed}/{len(items)}"
                + (f", {summary.failed} failed" if summary.failed else ""),
                refresh=False,
            )
        if on_outcome is not None:
            on_outcome(outcome)

    try:
        for outcome in outcomes:
            if outcome.track in pending:  # a retried task may report a file twice: once counts
                record(outcome)
        for item in list(pending.values()):
            record(Outcome(item.path, item.track, "failed", error=LOST))
    finally:
        close = getattr(outcomes, "close", None)
        if close is not None:  # a generator runner: stop its workers now, not at collection
            close()
        if bar is not None:
            bar.close()
    summary.wall_seconds = time.perf_counter() - start
    return summary
