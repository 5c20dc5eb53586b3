"""``separate`` on folders and with ``--jobs``: the stems equal a plain run's, a rerun does
nothing, failures are recorded and retried on demand, a dead worker fails its file alone, and a
run killed outright (``kill -9`` of every process) resumes with no partial file left."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepsampler.batch import Manifest, SeparationJob, execute, plan_run
from deepsampler.batch.local import run_pool
from deepsampler.cli import main
from deepsampler.separator import Separator
from tests.batch.conftest import (
    TRACKS,
    assert_same_stems,
    corrupt,
    make_catalogue,
    manifest,
    partials,
)


def separate(*args) -> int:
    return main(["separate", *map(str, args)])


def stem_times(out: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in out.rglob("*.wav")}


def test_jobs_2_equals_plain_separate_and_a_rerun_does_nothing(
    catalogue, reference, tiny_checkpoint, tmp_path, capsys
):
    out = tmp_path / "out"
    assert separate(catalogue, "-o", out, "--model", tiny_checkpoint, "--jobs", 2) == 0
    printed = capsys.readouterr()
    assert "6 file(s): 6 separated, 0 already complete, 0 failed" in printed.out
    assert "h of audio per hour" in printed.out and "2 worker process(es)" in printed.out
    assert_same_stems(reference, out)
    records = manifest(out)
    assert sorted(r["track"] for r in records) == list(TRACKS)
    assert {r["status"] for r in records} == {"done"}
    assert len({r["worker"] for r in records}) == 2  # both workers took files
    before = stem_times(out)
    assert separate(catalogue, "-o", out, "--model", tiny_checkpoint, "--jobs", 2) == 0
    assert "0 separated, 6 already complete" in capsys.readouterr().out
    assert stem_times(out) == before and len(manifest(out)) == 6
    # a folder run without --jobs reads the same manifest: nothing to do either
    assert separate(catalogue, "-o", out, "--model", tiny_checkpoint, "-q") == 0
    assert stem_times(out) == before and len(manifest(out)) == 6
    # another option is another key: done again
    assert separate(catalogue, "-o", out, "--model", tiny_checkpoint, "--stems", "bass", "-q") == 0
    assert len(manifest(out)) == 12


def test_a_corrupt_file_is_recorded_and_retried_on_demand(
    catalogue, reference, tiny_checkpoint, tmp_path, capsys
):
    folder = tmp_path / "in"
    shutil.copytree(catalogue, folder)
    corrupt(folder / "bad.wav")
    out = tmp_path / "out"
    args = [folder, "-o", out, "--model", tiny_checkpoint, "--jobs", 2, "-q"]
    assert separate(*args) == 1
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith(f"deepsampler: error: {folder / 'bad.wav'}: ") for line in err)
    assert err[-1] == "deepsampler: error: 1 of 7 input(s) failed"
    bad = [r for r in manifest(out) if r["track"] == "bad"]
    assert len(bad) == 1 and bad[0]["status"] == "failed" and "cannot be read" in bad[0]["error"]
    assert_same_stems(reference, out)  # the others finished
    assert not (out / "bad").exists()
    assert separate(*args) == 1  # not tried again, still reported
    assert "failed in an earlier run" in capsys.readouterr().err
    assert len(manifest(out)) == 7
    assert separate(*args, "--retry-failed") == 1
    assert len(manifest(out)) == 8 and manifest(out)[-1]["track"] == "bad"
    shutil.copy(folder / "t0.wav", folder / "bad.wav")  # repaired: a new key, done at once
    assert separate(*args) == 0
    assert manifest(out)[-1]["track"] == "bad" and manifest(out)[-1]["status"] == "done"


def test_a_dead_worker_fails_its_file_alone_and_is_replaced(catalogue, tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    sep = Separator(tiny_checkpoint)
    job = SeparationJob.from_separator(sep, str(tiny_checkpoint), out, None, "wav", 1)
    files = [(catalogue / f"{t}.wav", t) for t in TRACKS]
    killed = []

    def kill_first(outcome) -> None:
        if not killed:  # the worker was handed its next file before this outcome came back
            killed.append(int(outcome.worker.rsplit(":", 1)[1]))
            os.kill(killed[0], signal.SIGKILL)

    with Manifest(out) as m:
        plan = plan_run(files, job, m, False)
        summary = execute(plan, run_pool(job, plan.todo, 2), m, job, on_outcome=kill_first)
    assert summary.done == 5 and summary.failed == 1
    (lost,) = [r for r in manifest(out) if r["status"] == "failed"]
    assert lost["error"] == "the worker process separating it died (killed by SIGKILL)"
    later = [r["worker"] for r in manifest(out) if r["status"] == "done"][1:]
    assert all(not w.endswith(f":{killed[0]}") for w in later)
    assert not partials(out)
    assert main(["separate", str(catalogue), "-o", str(out), "--model", str(tiny_checkpoint),
                 "--jobs", "2", "--retry-failed", "-q"]) == 0  # fmt: skip


def test_kill_9_of_the_whole_run_resumes(reference, tiny_checkpoint, tmp_path):
    folder = make_catalogue(tmp_path / "in", tracks=[*TRACKS, "u0", "u1"], seconds=3.0)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "deepsampler.cli", "separate", str(folder), "-o", str(out),
           "--model", str(tiny_checkpoint), "--jobs", "2", "-q"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, start_new_session=True, env=env)  # its own process group
    deadline = time.monotonic() + 120
    while not manifest(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, the forkserver and every worker
    proc.wait()
    done_at_kill = len(manifest(out))
    assert 1 <= done_at_kill < 8, "the run was not killed mid-way"
    rerun = subprocess.run(cmd[:-1], capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{8 - done_at_kill} to do" in rerun.stdout
    assert f"{done_at_kill} already complete" in rerun.stdout
    assert sorted(r["track"] for r in manifest(out)) == sorted([*TRACKS, "u0", "u1"])
    assert not partials(out)


def test_bad_options_are_one_line(catalogue, tiny_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit):
        separate(catalogue, "-o", tmp_path / "o", "--jobs", 0)
    assert "--jobs: '0': use a whole number of 1 or more" in capsys.readouterr().err
    base = [catalogue, "-o", tmp_path / "o", "--model", tiny_checkpoint]
    assert separate(*base, "--jobs", 2, "--plot") == 1
    assert capsys.readouterr().err == (
        "deepsampler: error: --plot and --enhance run in this process; leave out --jobs\n"
    )
    assert not (tmp_path / "o").exists()
