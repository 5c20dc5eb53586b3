"""``deepsampler batch --ray`` on one local Ray cluster for the whole module (its start-up is
most of the cost): stems equal a plain ``separate``'s, a corrupt file is recorded as failed
while the others finish, a second run does nothing, and an actor killed mid-run is replaced
and the run completes."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest

from deepsampler.batch import Manifest, SeparationJob, execute, plan_run
from deepsampler.batch.ray_runner import run_ray
from deepsampler.cli import main
from deepsampler.separator import Separator
from tests.batch.conftest import TRACKS, assert_same_stems, corrupt, manifest, partials

ray = pytest.importorskip("ray")
# one cluster for the module under pytest-xdist: `make test` uses --dist loadscope (one module,
# one worker); the group keeps it so under --dist loadgroup too
pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """A local Ray of 2 CPUs in a temporary folder (short: Ray's socket paths must fit in
    107 characters), stopped and removed after the module."""
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp, logging_level="ERROR"
    )
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def stem_times(out: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in out.rglob("*.wav")}


def test_ray_equals_separate_a_corrupt_file_fails_alone_and_a_rerun_does_nothing(
    catalogue, reference, tiny_checkpoint, tmp_path, capsys
):
    folder = tmp_path / "in"
    shutil.copytree(catalogue, folder)
    corrupt(folder / "bad.wav")
    out = tmp_path / "out"
    args = ["batch", str(folder), "-o", str(out), "--model", str(tiny_checkpoint), "--ray"]
    assert main([*args, "--actors", "2"]) == 1
    printed = capsys.readouterr()
    assert "Ray (local), 2 actor(s)" in printed.out
    assert "7 file(s): 6 separated, 0 already complete, 1 failed" in printed.out
    assert f"deepsampler: error: {folder / 'bad.wav'}: cannot be read" in printed.err
    assert_same_stems(reference, out)
    records = {r["track"]: r for r in manifest(out)}
    assert sorted(records) == sorted([*TRACKS, "bad"])
    assert records["bad"]["status"] == "failed" and not (out / "bad").exists()
    before = stem_times(out)
    assert main([*args, "--actors", "2"]) == 1  # the corrupt file is still failed
    printed = capsys.readouterr()
    assert "0 to do" in printed.out and "0 separated, 6 already complete" in printed.out
    assert stem_times(out) == before and len(manifest(out)) == 7
    assert not partials(out)


def test_a_killed_actor_is_replaced_and_the_run_completes(
    catalogue, reference, tiny_checkpoint, tmp_path
):
    """An actor is killed while it writes a file (seen by its partial stems, named after its
    pid): Ray restarts it, the file is separated again and the run completes."""
    out = tmp_path / "out"
    sep = Separator(tiny_checkpoint)
    job = SeparationJob.from_separator(sep, str(tiny_checkpoint), out, None, "wav", 1)
    files = [(catalogue / f"{t}.wav", t) for t in TRACKS]
    killed: list[tuple[int, str]] = []
    finished = threading.Event()

    def kill_a_writer() -> None:
        while not finished.is_set() and not killed:
            for partial in partials(out):  # .<stem>.wav.<pid>-<random>.partial
                pid = int(partial.name.split(".wav.")[1].split("-")[0])
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, partial.parent.name))
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=kill_a_writer)
    watcher.start()
    try:
        with Manifest(out) as m:
            plan = plan_run(files, job, m, False)
            summary = execute(plan, run_ray(job, plan.todo, actors=2), m, job)
    finally:
        finished.set()
        watcher.join()
    assert killed, "no actor was caught writing"
    pid, track = killed[0]
    assert summary.done == len(TRACKS) and summary.failed == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # it is gone for good
    (record,) = [r for r in manifest(out) if r["track"] == track]
    assert not record["worker"].endswith(f":{pid}")  # redone by another process
    assert_same_stems(reference, out)
    assert not partials(out)  # the killed actor's were removed when the file was redone
