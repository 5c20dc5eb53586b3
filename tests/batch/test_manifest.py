"""The manifest and the plan made from it: round trip, a torn last line, and which changes
make a file be done again."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from deepsampler.batch import Manifest, Outcome, SeparationJob, execute, plan_run
from deepsampler.batch.plan import catalogue_inputs
from deepsampler.errors import DeepSamplerError
from tests.conftest import write_tone

STEMS = ("vocals", "bass")


def job(out: Path, **changes) -> SeparationJob:
    base = SeparationJob(
        model="m.pt", model_name="m", digest="d1", out_dir=str(out), stems=STEMS, fmt="wav"
    )
    return dataclasses.replace(base, **changes)


def fake_run(items, out: Path, failed: set[str] = frozenset()):
    """Outcomes as a runner would report them, with the stems written (empty files)."""
    for item in items:
        if item.track in failed:
            yield Outcome(item.path, item.track, "failed", error=f"{item.path}: broken")
            continue
        outputs = {}
        for s in STEMS:
            (out / item.track).mkdir(parents=True, exist_ok=True)
            (out / item.track / f"{s}.wav").write_bytes(b"x")
            outputs[s] = f"{item.track}/{s}.wav"
        yield Outcome(item.path, item.track, "done", outputs, audio_seconds=1.0, seconds=0.1)


def files_in(folder: Path) -> list[tuple[Path, str]]:
    return [(p, p.stem) for p in sorted(folder.glob("*.wav"))]


def run(files, j: SeparationJob, retry_failed=False, failed=frozenset()):
    out = Path(j.out_dir)
    with Manifest(out) as m:
        plan = plan_run(files, j, m, retry_failed)
        summary = execute(plan, fake_run(plan.todo, out, failed), m, j)
    return plan, summary


@pytest.fixture
def folder(tmp_path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        write_tone(src / f"a{i}.wav", seconds=0.2, seed=i)
    return src


def test_round_trip_and_a_rerun_does_nothing(folder, tmp_path):
    j = job(tmp_path / "out")
    plan, summary = run(files_in(folder), j)
    assert len(plan.todo) == 3 and summary.done == 3 and summary.ok
    records = Manifest(j.out_dir).read()
    assert [r["status"] for r in records] == ["done"] * 3
    rec = records[0]
    assert rec["input"] == str((folder / "a0.wav").resolve())
    assert rec["size"] == (folder / "a0.wav").stat().st_size
    assert rec["model"] == "m" and rec["model_digest"] == "d1"
    assert rec["options"]["stems"] == list(STEMS)
    assert rec["outputs"] == {"vocals": "a0/vocals.wav", "bass": "a0/bass.wav"}
    assert rec["audio_seconds"] == 1.0 and rec["seconds"] == 0.1
    plan, summary = run(files_in(folder), j)
    assert not plan.todo and len(plan.complete) == 3 and summary.skipped == 3
    assert len(Manifest(j.out_dir).read()) == 3  # nothing appended


def test_a_torn_last_line_is_skipped_and_ended(folder, tmp_path):
    j = job(tmp_path / "out")
    run(files_in(folder)[:2], j)
    path = Path(j.out_dir) / "manifest.jsonl"
    whole = path.read_text()
    path.write_text(whole + whole.splitlines()[0][:37])  # a kill -9 in the middle of a line
    m = Manifest(j.out_dir)
    assert len(m.read()) == 2 and m.torn_lines == 1
    plan, _ = run(files_in(folder), j)
    assert [i.track for i in plan.todo] == ["a2"] and plan.torn_lines == 1
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["track"] == "a2"  # the new record starts on its own line
    assert len(Manifest(j.out_dir).read()) == 3


def test_a_changed_input_model_option_or_missing_stem_is_redone(folder, tmp_path):
    j = job(tmp_path / "out")
    run(files_in(folder), j)
    write_tone(folder / "a0.wav", seconds=0.3, seed=9)  # edited: size and time change
    os.utime(folder / "a1.wav", ns=(1, 1))  # touched: time changes
    (Path(j.out_dir) / "a2" / "bass.wav").unlink()  # a stem removed since
    plan, _ = run(files_in(folder), j)
    assert sorted(i.track for i in plan.todo) == ["a0", "a1", "a2"]
    assert len(run(files_in(folder), j)[0].complete) == 3
    for changed in (job(tmp_path / "out", digest="d2"), job(tmp_path / "out", stems=("bass",))):
        assert len(run(files_in(folder), changed)[0].todo) == 3
    assert len(run(files_in(folder), job(tmp_path / "out", shifts=2))[0].todo) == 3


def test_failed_files_wait_for_retry_failed(folder, tmp_path):
    j = job(tmp_path / "out")
    _, summary = run(files_in(folder), j, failed={"a1"})
    assert summary.failed == 1 and summary.failures[0][1].endswith("broken") and not summary.ok
    plan, summary = run(files_in(folder), j)
    assert not plan.todo and [i.track for i in plan.failed_earlier] == ["a1"]
    assert plan.errors[plan.failed_earlier[0].key].endswith("broken")
    assert summary.failed_earlier == 1 and not summary.ok
    plan, summary = run(files_in(folder), j, retry_failed=True)
    assert [i.track for i in plan.todo] == ["a1"] and summary.ok


def test_a_file_the_runner_never_reports_is_recorded_as_failed(folder, tmp_path):
    j = job(tmp_path / "out")
    with Manifest(j.out_dir) as m:
        plan = plan_run(files_in(folder), j, m, False)
        summary = execute(plan, iter(list(fake_run(plan.todo[:2], Path(j.out_dir)))), m, j)
    assert summary.done == 2 and summary.failed == 1
    assert "no result came back" in Manifest(j.out_dir).read()[-1]["error"]


def test_two_runs_into_one_folder_are_refused(tmp_path):
    with Manifest(tmp_path), pytest.raises(DeepSamplerError, match="another run is writing"):
        with Manifest(tmp_path):
            pass


def test_catalogue_tracks_mirror_folders_and_lists(tmp_path):
    root = tmp_path / "cat"
    for sub in ("x", "y"):
        (root / sub).mkdir(parents=True)
        write_tone(root / sub / "01 intro.wav", seconds=0.1)
    (root / "song").mkdir()
    write_tone(root / "song" / "mixture.wav", seconds=0.1)
    write_tone(root / "song" / "vocals.wav", seconds=0.1)
    found = catalogue_inputs([str(root)], tmp_path / "out")
    assert [t for _, t in found] == ["song", "x/01 intro", "y/01 intro"]
    listing = tmp_path / "cat" / "list.txt"
    listing.write_text("# two files\nx/01 intro.wav\n\n" + str(root / "y" / "01 intro.wav") + "\n")
    found = catalogue_inputs([str(listing)], tmp_path / "out")
    assert [t for _, t in found] == ["x/01 intro", "y/01 intro"]
    assert found[0][0] == root / "x" / "01 intro.wav"
    with pytest.raises(DeepSamplerError, match="both write to the track folder"):
        catalogue_inputs([str(root / "x" / "01 intro.wav"), str(root / "y")], tmp_path / "o")
