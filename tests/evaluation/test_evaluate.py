"""`deepsampler evaluate` end to end on a tiny generated folder, and its bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from deepsampler.cli import main
from deepsampler.errors import DeepSamplerError

SOURCES = ("vocals", "drums", "bass", "other")


@pytest.fixture
def quick_scores(monkeypatch):
    """BSS Eval v4 (a 2048-tap projection per source and channel: seconds per track for four
    sources) replaced by uSDR in its four keys, for tests of what evaluate runs and writes rather
    than of the scores' values; ``test_evaluate_end_to_end`` and the metric tests keep the real
    one."""
    from deepsampler.evaluation import evaluate as module
    from deepsampler.evaluation.metrics import usdr

    def scores(references: np.ndarray, estimates: np.ndarray, sample_rate: int) -> dict:
        value = usdr(references, estimates)
        return {key: value for key in ("sdr", "isr", "sir", "sar")}

    monkeypatch.setattr(module, "museval_scores", scores)


def make_folder(root, tracks=2, seconds=1.2, sr=22050, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    for k in range(tracks):
        folder = root / f"track{k}"
        folder.mkdir(parents=True)
        stems = {
            s: (
                0.2 * np.sin(2 * np.pi * (100 * (i + 1) * (k + 1)) * t)
                + 0.05 * rng.standard_normal(t.size)
            )[:, None].repeat(channels, 1)
            for i, s in enumerate(SOURCES)
        }
        for s, x in stems.items():
            sf.write(str(folder / f"{s}.wav"), x, sr, subtype="FLOAT")
        sf.write(str(folder / "mixture.wav"), sum(stems.values()), sr, subtype="FLOAT")
    return root


def test_evaluate_end_to_end(tmp_path, tiny_checkpoint, capsys):
    data = make_folder(tmp_path / "data")
    out = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(data),
                "--model",
                str(tiny_checkpoint),
                "--out",
                str(out),
                "-q",
            ]
        )
        == 0
    )

    def strict(token):
        raise AssertionError(f"non-standard JSON token {token}")

    summary = json.loads((out / "summary.json").read_text(), parse_constant=strict)
    assert summary["sources"] == list(SOURCES) and summary["stream"] is False
    for key in ("model", "data", "scores", "baselines", "tracks", "rtf", "latency_ms"):
        assert key in summary
    assert set(summary["baselines"]) == {"mixture", "irm1", "irm2"}
    assert set(summary["tracks"]) == {"track0", "track1"}
    for s in (*SOURCES, "mean"):
        assert {"sdr", "si_sdr", "usdr"} <= set(summary["scores"][s])
    # the oracle (disjoint sines) beats the mixture floor, by a lot
    assert (
        summary["baselines"]["irm1"]["mean"]["sdr"]
        > summary["baselines"]["mixture"]["mean"]["sdr"] + 10
    )
    assert "oracle IRM1" in (out / "summary.md").read_text()
    for png in ("scores.png", "spectrograms_best.png", "spectrograms_worst.png"):
        assert (out / png).stat().st_size > 1000


def test_evaluate_streaming_equals_offline_scores(tmp_path, tiny_checkpoint, quick_scores):
    data = make_folder(tmp_path / "data", tracks=1)
    runs = {}
    for mode in ("offline", "stream"):
        extra = ["--stream"] if mode == "stream" else []
        assert (
            main(
                [
                    "evaluate",
                    "--data",
                    str(data),
                    "--model",
                    str(tiny_checkpoint),
                    "--out",
                    str(tmp_path / mode),
                    "-q",
                    *extra,
                ]
            )
            == 0
        )
        runs[mode] = json.loads((tmp_path / mode / "summary.json").read_text())
    assert runs["stream"]["stream"] is True
    for s in SOURCES:
        assert runs["stream"]["scores"][s]["sdr"] == pytest.approx(
            runs["offline"]["scores"][s]["sdr"], abs=0.01
        )


def test_missing_stem_names_the_track(tmp_path, tiny_checkpoint, capsys):
    data = make_folder(tmp_path / "data")
    (data / "track1" / "bass.wav").unlink()
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(data),
                "--model",
                str(tiny_checkpoint),
                "--out",
                str(tmp_path / "e"),
                "-q",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "track1: track lacks stem(s) ['bass']" in err and "the model gives" in err


def test_mismatched_lengths_and_rates(tmp_path, tiny_checkpoint, capsys):
    data = make_folder(tmp_path / "data", tracks=1)
    sf.write(str(data / "track0" / "drums.wav"), np.zeros(100), 22050)
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(data),
                "--model",
                str(tiny_checkpoint),
                "--out",
                str(tmp_path / "e"),
                "-q",
            ]
        )
        == 1
    )
    assert "track0: stems have different lengths" in capsys.readouterr().err
    sf.write(str(data / "track0" / "drums.wav"), np.zeros(int(1.2 * 16000)), 16000)
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(data),
                "--model",
                str(tiny_checkpoint),
                "--out",
                str(tmp_path / "e"),
                "-q",
            ]
        )
        == 1
    )
    assert "stems have different sample rates" in capsys.readouterr().err


def test_sources_mismatch_lists_both(tmp_path, capsys):
    from deepsampler.models import DeepSampler, preset_config, save_checkpoint

    ckpt = save_checkpoint(
        tmp_path / "sp.pt",
        DeepSampler(preset_config("tiny", sources=["speech", "noise"])),
        training={"purpose": "test"},
    )
    data = make_folder(tmp_path / "data", tracks=1)
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(data),
                "--model",
                str(ckpt),
                "--out",
                str(tmp_path / "e"),
                "-q",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "['speech', 'noise']" in err and "bass" in err


def test_empty_folder(tmp_path, tiny_checkpoint, capsys):
    (tmp_path / "empty").mkdir()
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(tmp_path / "empty"),
                "--model",
                str(tiny_checkpoint),
                "--out",
                str(tmp_path / "e"),
                "-q",
            ]
        )
        == 1
    )
    assert "no track folders with a mixture file" in capsys.readouterr().err


def test_speech_data_adds_pesq_and_stoi(tmp_path):
    from deepsampler.models import DeepSampler, preset_config, save_checkpoint

    ckpt = save_checkpoint(
        tmp_path / "sp.pt",
        DeepSampler(
            preset_config("tiny", sources=["speech", "noise"], sample_rate=16000, audio_channels=1)
        ),
        training={"purpose": "test"},
    )
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    speech = 0.4 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 4 * t) > 0)
    noise = 0.1 * rng.standard_normal(t.size)
    folder = tmp_path / "data" / "utt"
    folder.mkdir(parents=True)
    for name, x in (("speech", speech), ("noise", noise), ("mixture", speech + noise)):
        sf.write(str(folder / f"{name}.wav"), x, 16000, subtype="FLOAT")
    out = tmp_path / "e"
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(tmp_path / "data"),
                "--model",
                str(ckpt),
                "--out",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    speech_scores = summary["scores"]["speech"]
    for key in ("pesq", "stoi", "pesq_improvement", "stoi_improvement"):
        assert key in speech_scores
    assert (
        summary["baselines"]["irm2"]["speech"]["stoi"]
        > summary["baselines"]["mixture"]["speech"]["stoi"]
    )
    assert "PESQ-WB" in (out / "summary.md").read_text()


def test_offline_options_refused_with_stream_and_run_offline(
    tmp_path, tiny_checkpoint, capsys, quick_scores
):
    data = make_folder(tmp_path / "data", tracks=1)
    base = ["evaluate", "--data", str(data), "--model", str(tiny_checkpoint), "-q"]
    for option in (["--shifts", "2"], ["--shifts", "0"], ["--flip"], ["--wiener", "0"]):
        assert main([*base, "--out", str(tmp_path / "s"), "--stream", *option]) == 1
        assert "drop them with --stream" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    assert main([*base, "--out", str(tmp_path / "o"), "--shifts", "2", "--flip"]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert "(shifts 2, flip)" in json.dumps(summary)
    assert main([*base, "--out", str(tmp_path / "w"), "--wiener", "0"]) == 0
    assert "(wiener 0)" in json.loads((tmp_path / "w" / "summary.json").read_text())["model"]


def test_a_model_default_passes_are_in_the_summary_and_one_pass_on_request(
    tmp_path, tiny_checkpoint, quick_scores
):
    """A checkpoint whose metadata names shifts 2 + flip evaluates with them by default (the
    summary's model label says so); ``--shifts 1 --no-flip`` and ``--stream`` run one pass."""
    from deepsampler.models import load_checkpoint, save_checkpoint

    loaded = load_checkpoint(tiny_checkpoint)
    ckpt = save_checkpoint(
        tmp_path / "avg.pt",
        loaded.model,
        training=loaded.training,
        metadata={"name": "avg", "inference": {"shifts": 2, "flip": True}},
    )
    data = make_folder(tmp_path / "data", tracks=1)
    base = ["evaluate", "--data", str(data), "--model", str(ckpt), "-q"]
    labels = {}
    runs = (
        ("default", []),
        ("one", ["--shifts", "1", "--no-flip"]),
        ("stream", ["--stream"]),
    )
    for name, extra in runs:
        assert main([*base, "--out", str(tmp_path / name), *extra]) == 0
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        labels[name] = summary["model"]
    assert labels == {
        "default": "avg (shifts 2, flip)",
        "one": "avg",
        "stream": "avg",
    }


# evaluate() called directly with a fake separator: no model, 8 kHz mono, no oracle rows


class RecordingSeparate:
    """A separator that records the tracks it is given (by length, [c, n] -> n) and raises
    ``fail`` on call number ``fail_on`` (1-based); each source's estimate is mixture / 4."""

    def __init__(self, fail_on: int | None = None, fail: BaseException | None = None):
        self.calls: list[int] = []
        self.fail_on, self.fail = fail_on, fail

    def __call__(self, mixture: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        self.calls.append(mixture.shape[-1])
        if len(self.calls) == self.fail_on:
            raise self.fail
        return {s: mixture / 4 for s in SOURCES}


def run_evaluate(data, out, separate):
    from deepsampler.evaluation.evaluate import evaluate

    return evaluate(
        separate,
        data,
        out,
        sources=SOURCES,
        n_fft=256,
        hop=128,
        model_name="fake",
        latency_ms=0.0,
        progress=False,
        baselines=False,
    )


def test_bad_last_track_refused_before_any_separation(tmp_path):
    data = make_folder(tmp_path / "data", tracks=3, seconds=1.0, sr=8000)
    sf.write(str(data / "track2" / "drums.wav"), np.zeros(4000), 8000, subtype="FLOAT")
    separate = RecordingSeparate()
    with pytest.raises(DeepSamplerError, match="track2: stems have different lengths"):
        run_evaluate(data, tmp_path / "e", separate)
    assert separate.calls == []
    assert not (tmp_path / "e" / "summary.json").exists()


def test_every_bad_track_is_named_in_one_error(tmp_path):
    data = make_folder(tmp_path / "data", tracks=3, seconds=1.0, sr=8000)
    (data / "track0" / "bass.wav").unlink()
    sf.write(str(data / "track1" / "vocals.wav"), np.zeros((8000, 2)), 8000, subtype="FLOAT")
    sf.write(str(data / "track2" / "other.wav"), np.zeros(8000), 16000, subtype="FLOAT")
    separate = RecordingSeparate()
    with pytest.raises(DeepSamplerError) as info:
        run_evaluate(data, tmp_path / "e", separate)
    message = str(info.value)
    assert "3 of 3 track(s) cannot be evaluated" in message and "\n" not in message
    assert "track0: track lacks stem(s) ['bass']" in message
    assert "track1: stems have different channels" in message
    assert "track2: stems have different sample rates" in message
    assert separate.calls == []


@pytest.mark.parametrize("fail", [RuntimeError("separator broke"), KeyboardInterrupt()])
def test_failure_partway_keeps_finished_tracks_and_reraises(tmp_path, fail, capsys):
    data = make_folder(tmp_path / "data", tracks=3, seconds=1.0, sr=8000)
    out = tmp_path / "e"
    out.mkdir()
    (out / "scores.png").write_bytes(b"stale plot of an earlier run")
    separate = RecordingSeparate(fail_on=2, fail=fail)
    with pytest.raises(type(fail)) as info:
        run_evaluate(data, out, separate)
    assert info.value is fail
    assert len(separate.calls) == 2  # the third track was never started
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["tracks_total"] == 3
    reason = f"{type(fail).__name__}: {fail}" if str(fail) else type(fail).__name__
    assert summary["failed"] == {"track1": reason}
    assert set(summary["tracks"]) == {"track0"}
    assert set(summary["baseline_tracks"]["mixture"]) == {"track0"}
    # scores are over the finished track alone: its aggregate equals its own row
    for s in SOURCES:
        assert np.isfinite(summary["tracks"]["track0"][s]["sdr"])
        assert summary["scores"][s]["sdr"] == summary["tracks"]["track0"][s]["sdr"]
    assert "PARTIAL RUN" in (out / "summary.md").read_text()
    assert "1 of 3 track(s) finished" in (out / "summary.md").read_text()
    assert not (out / "scores.png").exists()
    assert "stopped at track track1" in capsys.readouterr().err


def test_failure_at_the_first_track_still_marks_the_summary_partial(tmp_path):
    data = make_folder(tmp_path / "data", tracks=2, seconds=1.0, sr=8000)
    out = tmp_path / "e"
    with pytest.raises(ValueError):
        run_evaluate(data, out, RecordingSeparate(fail_on=1, fail=ValueError("bad")))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["tracks"] == {} and summary["scores"] == {}
    assert summary["failed"] == {"track0": "ValueError: bad"}
    assert "0 of 2 track(s) finished" in (out / "summary.md").read_text()


def test_full_run_says_complete(tmp_path, quick_scores):
    data = make_folder(tmp_path / "data", tracks=2, seconds=1.0, sr=8000)
    out = tmp_path / "e"
    separate = RecordingSeparate()
    summary = run_evaluate(data, out, separate)
    assert len(separate.calls) == 2
    written = json.loads((out / "summary.json").read_text())
    assert written["complete"] is True and summary["complete"] is True
    assert written["failed"] == {} and written["tracks_total"] == 2
    assert set(written["tracks"]) == {"track0", "track1"}
    assert "PARTIAL" not in (out / "summary.md").read_text()
    for png in ("scores.png", "spectrograms_best.png", "spectrograms_worst.png"):
        assert (out / png).stat().st_size > 1000
