"""Enhancer (segments, adapters, resampling) and the `enhance` / `stemprover` / `separate --enhance`
commands, end to end on generated files with a tiny untrained StemProver."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from deepsampler.cli import main
from deepsampler.errors import DeepSamplerError
from deepsampler.stemprover.checkpoint import save_stemprover
from deepsampler.stemprover.enhancer import Enhancer, adapter_weights
from deepsampler.stemprover.model import StemProver
from deepsampler.stemprover.refiners import IdentityRefiner
from deepsampler.stemprover.segments import SegmentConfig

from .conftest import RATE, tiny_config

SHORT = SegmentConfig(min_seconds=0.4, max_seconds=0.8, fade_seconds=0.02)


def _stem(seconds: float = 1.7, channels: int = 2, rate: int = RATE) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.02 * rng.standard_normal(t.shape)
    return np.stack([tone * (1 - 0.2 * c) for c in range(channels)]).astype(np.float32)


@pytest.fixture
def model_file(tmp_path):
    torch.manual_seed(0)
    model = StemProver(tiny_config())
    for name in ("bleed", "band_limit"):
        model.add_adapter(name)
    return save_stemprover(tmp_path / "tiny.pt", model)


def test_identity_refiner_through_segments_returns_the_input() -> None:
    model = StemProver(tiny_config())
    stem = _stem()
    out = Enhancer(model, segments=SHORT, refiner=IdentityRefiner(RATE)).enhance(
        stem, RATE, adapters="none"
    )
    np.testing.assert_allclose(out.audio, stem, atol=1e-6)
    assert out.segments >= 2


def test_refiner_sees_the_mixture_segment_by_segment() -> None:
    # a "refiner" that returns the mixture rows it was handed: the overlap-add must give back the
    # whole mixture, so every segment's mixture lines up with its stem, channel by channel
    model = StemProver(tiny_config())
    stem = _stem()
    mix = stem[::-1].copy() + 0.05
    calls = []

    def take_mixture(segments: torch.Tensor, mixture: torch.Tensor | None) -> torch.Tensor:
        calls.append(mixture is not None and mixture.shape == segments.shape)
        return mixture

    out = Enhancer(model, segments=SHORT, refiner=take_mixture).enhance(
        stem, RATE, mixture=mix, adapters="none"
    )
    assert calls and all(calls)
    np.testing.assert_allclose(out.audio, mix, atol=1e-6)
    seen = []
    Enhancer(model, segments=SHORT, refiner=lambda s, m: seen.append(m) or s).enhance(
        stem, RATE, adapters="none"
    )
    assert seen and all(m is None for m in seen)


def test_enhance_shapes_rates_and_seed(model_file) -> None:
    enh = Enhancer(model_file, segments=SHORT, steps=2, batch_size=3)
    stem = _stem()
    a = enh.enhance(stem, RATE, mixture=stem * 1.5)
    b = enh.enhance(stem, RATE, mixture=stem * 1.5)
    assert a.audio.shape == stem.shape and np.isfinite(a.audio).all()
    np.testing.assert_array_equal(a.audio, b.audio)  # seeded sampler
    assert a.report is not None and set(a.weights) <= {"bleed", "band_limit"}
    mono = enh.enhance(_stem(channels=1, rate=22050)[0], 22050, adapters="bleed")
    assert mono.audio.shape == (int(1.7 * 22050),) and mono.weights == {"bleed": 1.0}


def test_enhance_bad_inputs(model_file) -> None:
    enh = Enhancer(model_file, segments=SHORT, steps=1)
    stem = _stem()
    with pytest.raises(DeepSamplerError, match="unknown adapter"):
        enh.enhance(stem, RATE, adapters="reverb")
    with pytest.raises(DeepSamplerError, match="mixture has"):
        enh.enhance(stem, RATE, mixture=stem[:, :-10])
    with pytest.raises(DeepSamplerError, match="NaN"):
        enh.enhance(stem * np.nan, RATE)
    with pytest.raises(DeepSamplerError, match="has none"):
        Enhancer(model_file, steps=0)  # no predictive stage in this model
    with pytest.raises(DeepSamplerError, match="use 0"):
        Enhancer(model_file, steps=-1)
    with pytest.raises(DeepSamplerError, match="unknown StemProver model"):
        Enhancer("no-such-model")
    assert adapter_weights({"bleed": 0.5}, ["bleed"], None) == {"bleed": 0.5}
    with pytest.raises(DeepSamplerError, match=r"\[0, 2\]"):
        adapter_weights({"bleed": 5.0}, ["bleed"], None)


def test_enhance_cli_end_to_end(model_file, tmp_path, capsys) -> None:
    stem_path, mix_path = tmp_path / "vocals.wav", tmp_path / "mix.wav"
    stem = _stem()
    sf.write(stem_path, stem.T, RATE, subtype="FLOAT")
    sf.write(mix_path, (1.5 * stem).T, RATE, subtype="FLOAT")
    out = tmp_path / "out"
    argv = ["enhance", str(stem_path), "-o", str(out), "--stemprover-model", str(model_file)]
    assert (
        main([*argv, "--steps", "1", "--mixture", str(mix_path), "--report", "--threads", "1"]) == 0
    )
    written, rate = sf.read(out / "vocals.wav", always_2d=True)
    assert rate == RATE and written.shape == stem.T.shape
    report = json.loads((out / "vocals.artifacts.json").read_text())
    assert set(report["artifacts"]) == {"bleed", "musical_noise", "band_limit", "phase_smear"}
    assert "adapters:" in capsys.readouterr().out
    assert main([*argv, "--adapters", "reverb", "-q"]) == 1
    assert "unknown adapter" in capsys.readouterr().err
    assert (
        main(
            [
                "enhance",
                str(tmp_path / "missing.wav"),
                "-o",
                str(out),
                "--stemprover-model",
                str(model_file),
            ]
        )
        == 1
    )
    assert main(["stemprover", "detect", str(stem_path), "--mixture", str(mix_path)]) == 0
    assert "band_limit" in capsys.readouterr().out


def test_separate_with_enhance(model_file, tmp_path) -> None:
    rate = 44100
    mix = _stem(seconds=1.2, rate=rate)
    sf.write(tmp_path / "song.wav", mix.T, rate, subtype="FLOAT")
    out = tmp_path / "sep"
    argv = ["separate", str(tmp_path / "song.wav"), "-o", str(out), "--stems", "vocals,bass", "-q"]
    argv += ["--enhance", "--enhance-steps", "1", "--stemprover-model", str(model_file)]
    assert main(argv) == 0
    for s in ("vocals", "bass"):
        x, r = sf.read(out / "song" / "enhanced" / f"{s}.wav", always_2d=True)
        assert r == rate and x.shape == mix.T.shape


def test_shipped_stemprover_resolves_by_name_and_is_not_a_separator(
    model_file, tmp_path, monkeypatch
) -> None:
    from deepsampler.models import registry
    from deepsampler.stemprover import enhancer

    pretrained = tmp_path / "pretrained"
    (pretrained / "stemprover").mkdir(parents=True)
    (pretrained / "sep.pt").write_bytes(b"")
    shutil.copyfile(model_file, pretrained / "stemprover" / "sp.pt")
    shutil.copyfile(model_file, pretrained / "stemprover" / "sp-regression.pt")
    monkeypatch.setattr(registry, "PRETRAINED_DIR", pretrained)
    monkeypatch.setattr(enhancer, "STEMPROVER_DIR", pretrained / "stemprover")
    assert list(registry.shipped_models()) == ["sep"]
    assert enhancer.resolve_stemprover("sp") == pretrained / "stemprover" / "sp.pt"
    with pytest.raises(DeepSamplerError, match=r"shipped: \['sp'\]"):
        enhancer.resolve_stemprover("other")


def test_zero_steps_runs_the_predictive_stage_alone() -> None:
    """``--steps 0``: the predictor's estimate, segment by segment, without a latent edit."""
    from deepsampler.stemprover.refiners import PredictorRefiner

    from .test_mask_refiner import model_with_predictor

    model = model_with_predictor()
    stem, mix = 0.6 * _stem(), _stem()
    out = Enhancer(model, segments=SHORT, steps=0).enhance(stem, RATE, mixture=mix)
    ref = Enhancer(model, segments=SHORT, refiner=PredictorRefiner(model)).enhance(
        stem, RATE, mixture=mix, adapters="none"
    )
    np.testing.assert_allclose(out.audio, ref.audio, atol=1e-6)
    assert not np.allclose(out.audio, stem, atol=1e-3)
    assert out.steps == 0 and out.report is None and out.weights == {}
    with pytest.raises(DeepSamplerError, match="--mixture"):
        Enhancer(model, segments=SHORT, steps=0).enhance(stem, RATE)


def test_a_guided_model_leaves_stems_outside_its_guides_sources_alone(tmp_path, capsys) -> None:
    """The music guide makes speech worse, so a guided model refines only its guide's sources;
    the source comes from the caller or from the stem file's name."""
    import dataclasses

    from deepsampler.sources import source_from_filename

    from .test_mask_refiner import guided_refiner

    refiner = guided_refiner(tmp_path)
    model = StemProver(dataclasses.replace(tiny_config(), predictor=refiner.config)).eval()
    with torch.no_grad():
        model.predictor.alpha.fill_(1.0)  # follow the guide: not the identity
    enhancer = Enhancer(model, segments=SHORT, steps=0)
    assert enhancer.domain == ("vocals", "drums", "bass", "other")
    stem, mix = 0.6 * _stem(), _stem()
    skipped = enhancer.enhance(stem, RATE, mixture=mix, source="speech")
    np.testing.assert_array_equal(skipped.audio, stem)
    assert "outside this model's domain" in skipped.extra["skipped"] and skipped.steps == 0
    # no mixture needed to leave a stem alone
    np.testing.assert_array_equal(enhancer.enhance(stem, RATE, source="noise").audio, stem)
    mono = enhancer.enhance(stem[0], RATE, source="speech").audio
    assert mono.shape == stem[0].shape and not np.shares_memory(mono, stem)
    for source in ("vocals", "Vocals", None):  # in the domain, or unknown: refined
        out = enhancer.enhance(stem, RATE, mixture=mix, source=source)
        assert not np.allclose(out.audio, stem, atol=1e-3) and "skipped" not in out.extra
    # file names that name a source say it; others say nothing
    assert source_from_filename("out/song/Speech.wav") == "speech"
    assert source_from_filename("out/song/vocals.flac") == "vocals"
    assert source_from_filename("take3.wav") is None
    model_path = save_stemprover(tmp_path / "guided.pt", model)
    for name in ("speech", "take3"):
        sf.write(tmp_path / f"{name}.wav", stem.T, RATE, subtype="FLOAT")
    sf.write(tmp_path / "mix.wav", mix.T, RATE, subtype="FLOAT")
    argv = ["enhance", "-o", str(tmp_path / "out"), "--stemprover-model", str(model_path)]
    argv += ["--mixture", str(tmp_path / "mix.wav"), "--steps", "0", "--threads", "1"]
    assert main([*argv[:1], str(tmp_path / "speech.wav"), *argv[1:]]) == 0
    assert "outside this model's domain" in capsys.readouterr().out
    written, _ = sf.read(tmp_path / "out" / "speech.wav", always_2d=True)
    np.testing.assert_allclose(written, stem.T, atol=1e-7)
    # an explicit --source wins over the file name
    assert main([*argv[:1], str(tmp_path / "take3.wav"), *argv[1:], "--source", "speech"]) == 0
    written, _ = sf.read(tmp_path / "out" / "take3.wav", always_2d=True)
    np.testing.assert_allclose(written, stem.T, atol=1e-7)
