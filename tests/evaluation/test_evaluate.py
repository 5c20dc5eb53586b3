"""`deepsampler evaluate` end to end on a tiny generated folder, and its bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from deepsampler.cli import main

SOURCES = ("vocals", "drums", "bass", "other")


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


def test_evaluate_streaming_equals_offline_scores(tmp_path, tiny_checkpoint):
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


def test_offline_options_refused_with_stream_and_run_offline(tmp_path, tiny_checkpoint, capsys):
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
    tmp_path, tiny_checkpoint
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
        ("stream1", ["--stream", "--shifts", "1", "--no-flip"]),  # one pass, said explicitly
    )
    for name, extra in runs:
        assert main([*base, "--out", str(tmp_path / name), *extra]) == 0
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        labels[name] = summary["model"]
    assert labels == {
        "default": "avg (shifts 2, flip)",
        "one": "avg",
        "stream": "avg",
        "stream1": "avg",
    }
