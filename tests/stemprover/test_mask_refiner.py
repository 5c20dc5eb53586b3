"""The predictive stage: a fresh mask refiner is the identity, it learns, it checks its input."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsampler.errors import CheckpointError
from deepsampler.stemprover.checkpoint import guide_digest, load_stemprover, save_stemprover
from deepsampler.stemprover.mask_refiner import MaskRefiner, MaskRefinerConfig
from deepsampler.stemprover.model import StemProver
from deepsampler.stemprover.refiners import PredictorRefiner, RegressionRefiner
from deepsampler.stemprover.train import negative_snr_db

from .conftest import RATE, tiny_config


def tiny_mask_config() -> MaskRefinerConfig:
    # 129 bins = 16 x 4 + 8 x 8 + 1
    return MaskRefinerConfig(
        sample_rate=RATE,
        n_fft=256,
        hop=64,
        width=8,
        layers=2,
        kernel=3,
        bands=((4, 16), (8, 8), (1, 1)),
    )


def _mixture(n: int = 2, samples: int = 4000, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(n, samples, generator=g)


@settings(max_examples=15, deadline=None)
@given(gain=st.floats(0.01, 0.99))
def test_fresh_refiner_returns_a_masked_stem(gain: float) -> None:
    torch.manual_seed(0)
    refiner = MaskRefiner(tiny_mask_config()).eval()
    mix = _mixture()
    stem = gain * mix  # a mask-based stem: |S| <= |M| in every bin
    with torch.no_grad():
        out = refiner(stem, mix)
    torch.testing.assert_close(out, stem, atol=1e-5 * (1 + gain), rtol=1e-4)


def test_shapes_and_bad_input() -> None:
    refiner = MaskRefiner(tiny_mask_config())
    mix = _mixture(3, 3001)
    assert refiner(0.5 * mix, mix).shape == (3, 3001)
    assert refiner(0.5 * mix).shape == (3, 3001)  # no mixture: the stem stands in
    with pytest.raises(ValueError, match="mono segments"):
        refiner(mix[0], mix[0])
    with pytest.raises(ValueError, match="differ"):
        refiner(mix, mix[:, :-1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bands": ((4, 16),)}, "cover 64 bins"),
        ({"bands": ((4, 16), (0, 3), (8, 8), (1, 1))}, ">= 1"),
        ({"hop": 200}, "hop"),
        ({"kernel": 4}, "odd"),
        ({"width": 0}, "width"),
    ],
)
def test_config_is_checked(kwargs: dict, match: str) -> None:
    base = tiny_mask_config().__dict__ | kwargs
    with pytest.raises(ValueError, match=match):
        MaskRefinerConfig(**base)


def test_receptive_field_grows_with_layers() -> None:
    a = tiny_mask_config()
    b = MaskRefinerConfig(**(a.__dict__ | {"layers": 4}))
    # kernel 3, dilations 1, 2 (, 4, 8): 3 frames -> 15 frames of 64 samples at 16 kHz
    assert a.receptive_field_s() == pytest.approx(3 * 64 / RATE)
    assert b.receptive_field_s() == pytest.approx(15 * 64 / RATE)


def test_learns_to_remove_bleed_from_one_example() -> None:
    """A stem with the other source leaking in: a few steps move it towards the clean stem."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(5)
    t = torch.arange(8000) / RATE
    clean = (0.2 * torch.sin(2 * torch.pi * 440 * t))[None]
    other = 0.1 * torch.randn(1, 8000, generator=g)
    mix = clean + other
    stem = clean + 0.5 * other  # half the other source left in
    refiner = MaskRefiner(tiny_mask_config())
    opt = torch.optim.Adam(refiner.parameters(), lr=1e-2)
    with torch.no_grad():
        before = float(negative_snr_db(refiner(stem, mix), clean))
    for _ in range(40):
        loss = negative_snr_db(refiner(stem, mix), clean).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(negative_snr_db(refiner(stem, mix), clean))
    assert after < before - 3.0  # at least 3 dB closer to the clean stem


def model_with_predictor() -> StemProver:
    """A tiny StemProver whose predictor is not the identity (heads moved off zero)."""
    torch.manual_seed(0)
    model = StemProver(replace(tiny_config(), predictor=tiny_mask_config())).eval()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():  # a trained-looking predictor: not the identity
        for head in model.predictor.net.heads:
            head.weight.add_(0.5 * torch.randn(head.weight.shape, generator=g))
    return model


class _NoChange(torch.nn.Module):
    """A regression net that predicts no latent change."""

    def forward(self, z, phase, z_mix=None):
        return torch.zeros_like(z)


@torch.no_grad()
def test_the_latent_stages_refine_the_predictors_estimate(monkeypatch, tmp_path) -> None:
    import deepsampler.stemprover.model as model_module

    model = model_with_predictor()
    mix = _mixture(2, 4000, seed=3)
    stem = 0.6 * mix
    predicted = model.predictor(stem, mix)
    assert not torch.allclose(predicted, stem, atol=1e-3)
    torch.testing.assert_close(PredictorRefiner(model)(stem, mix), predicted)
    # with a sampler that leaves the latent alone, refine returns the predictor's estimate
    monkeypatch.setattr(model_module, "sample", lambda den, z, *a, **k: z)
    torch.testing.assert_close(model.refine(stem, mixture=mix), predicted, rtol=0, atol=1e-5)
    torch.testing.assert_close(model.refine(stem), stem, rtol=0, atol=1e-5)  # no mixture: skipped
    # so does the regression control with no latent change: both refine the same estimate
    regression = RegressionRefiner(model, _NoChange())
    torch.testing.assert_close(regression(stem, mix), predicted, rtol=0, atol=1e-5)
    # the predictor is saved and loaded with the model
    loaded, _ = load_stemprover(save_stemprover(tmp_path / "sp.pt", model))
    torch.testing.assert_close(loaded.predictor(stem, mix), predicted)


def test_predictor_rate_must_match_the_model() -> None:
    with pytest.raises(ValueError, match="predictor.sample_rate"):
        replace(tiny_config(), predictor=replace(tiny_mask_config(), sample_rate=RATE * 2))


# ----- the guide separator ----------------------------------------------------------------------


def tiny_guide(path) -> str:
    """A tiny four-source separator checkpoint at the tests' rate, as a guide."""
    from deepsampler.models import DeepSampler, preset_config, save_checkpoint

    torch.manual_seed(5)
    config = preset_config("tiny", sample_rate=RATE, causal=False)
    return str(save_checkpoint(path, DeepSampler(config), training={"steps": 1}))


def guided_refiner(tmp_path) -> MaskRefiner:
    torch.manual_seed(0)
    config = replace(tiny_mask_config(), guide=tiny_guide(tmp_path / "guide.pt"))
    return MaskRefiner(config).eval()


@torch.no_grad()
def test_guided_refiner_starts_as_the_identity_and_picks_the_closest_source(tmp_path) -> None:
    refiner = guided_refiner(tmp_path)
    mix = _mixture(2, 4000, seed=4)
    stem = 0.4 * mix
    torch.testing.assert_close(refiner(stem, mix), stem, atol=1e-5, rtol=1e-4)
    # the guide: the separator's estimate (mono row doubled to its channels, then averaged)
    est = refiner.guide_model(mix[:, None].expand(-1, 2, -1)).mean(2)  # [n, s, samples]
    for k in range(est.shape[1]):  # a stem equal to source k's estimate gets source k back
        torch.testing.assert_close(refiner.guide(est[:, k], mix), est[:, k])


@torch.no_grad()
def test_full_trust_in_the_guide_returns_its_magnitudes(tmp_path) -> None:
    refiner = guided_refiner(tmp_path)
    mix = _mixture(2, 4000, seed=6)
    stem = 0.3 * mix
    guide = refiner.guide(stem, mix)
    refiner.alpha.fill_(1.0)  # trust the guide's ratio everywhere; the heads are still zero
    out = refiner(stem, mix)
    # both carry the mixture's phase, so the output is the guide (up to the ratio clamp)
    assert float(negative_snr_db(out, guide).max()) < -30
    assert float(negative_snr_db(stem, guide).max()) > -30  # and the stem was not


def test_the_guide_is_frozen_and_saved_by_digest(tmp_path) -> None:
    import shutil

    refiner = guided_refiner(tmp_path)
    trainable = {n for n, p in refiner.named_parameters() if p.requires_grad}
    assert "alpha" in trainable and not any(n.startswith("guide_model.") for n in trainable)
    refiner.train()
    assert refiner.net.training and not refiner.guide_model.training
    mix = _mixture(2, 4000, seed=7)
    refiner(0.5 * mix, mix).pow(2).mean().backward()
    assert all(p.grad is None for p in refiner.guide_model.parameters())
    # a saved StemProver holds the refiner's weights and the guide's digest, not the guide
    torch.manual_seed(0)
    model = StemProver(replace(tiny_config(), predictor=refiner.config)).eval()
    with torch.no_grad():
        model.predictor.alpha.fill_(0.5)
    saved = save_stemprover(tmp_path / "sp.pt", model)
    payload = torch.load(saved, weights_only=True)
    assert not any(k.startswith("predictor.guide_model.") for k in payload["state_dict"])
    assert payload["config"]["guide_digest"] == guide_digest(model.predictor)
    loaded, _ = load_stemprover(saved)
    stem = 0.5 * mix
    torch.testing.assert_close(loaded.predict(stem, mix), model.predict(stem, mix))
    # a guide file with other weights is refused: the refiner learned the old one's errors
    guide_path = refiner.config.guide
    shutil.copyfile(guide_path, tmp_path / "kept.pt")
    torch.manual_seed(99)
    from deepsampler.models import DeepSampler, preset_config, save_checkpoint

    other = DeepSampler(preset_config("tiny", sample_rate=RATE, causal=False))
    save_checkpoint(guide_path, other, training={"steps": 1})
    with pytest.raises(CheckpointError, match="other weights than the refiner was trained with"):
        load_stemprover(saved)
    shutil.copyfile(tmp_path / "kept.pt", guide_path)
    load_stemprover(saved)  # the right guide back: it loads again


def test_guide_is_checked(tmp_path) -> None:
    with pytest.raises(ValueError, match="guide must name"):
        replace(tiny_mask_config(), guide=" ")
    path = tiny_guide(tmp_path / "guide.pt")
    with pytest.raises(ValueError, match="Hz"):
        MaskRefiner(replace(tiny_mask_config(), sample_rate=RATE * 2, guide=path))
    with pytest.raises(ValueError, match="no guide"):
        MaskRefiner(tiny_mask_config()).guide(_mixture(), _mixture())
