"""The shipped models: each loads, was trained, carries a model card, meets its latency bound,
and the causal ones stream exactly like they separate offline."""

from __future__ import annotations

import pytest
import torch

from deepsampler.models import load_checkpoint
from deepsampler.models.registry import shipped_models
from deepsampler.streaming import StreamingSeparator

# name -> (sources, sample rate, channels, causal, latency bound in ms or None)
EXPECTED = {
    "music4-rt": (("vocals", "drums", "bass", "other"), 44100, 2, True, 23.0),
    "music4-hq": (("vocals", "drums", "bass", "other"), 44100, 2, False, None),
    "speech-rt": (("speech", "noise"), 16000, 1, True, 16.0),
    "siren-rt": (("siren", "background"), 16000, 1, True, None),
}
SHIPPED = sorted(set(EXPECTED) & set(shipped_models()))


def test_the_default_model_ships():
    assert "music4-rt" in shipped_models()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_matches_its_promise(name):
    sources, sr, channels, causal, bound = EXPECTED[name]
    loaded = load_checkpoint(shipped_models()[name])
    cfg = loaded.model.config
    assert loaded.trained and loaded.training["steps"] > 0
    assert (cfg.sources, cfg.sample_rate, cfg.audio_channels, cfg.causal) == (
        sources,
        sr,
        channels,
        causal,
    )
    if bound is not None:
        assert cfg.latency_ms <= bound
    card = shipped_models()[name].with_suffix(".md")
    text = card.read_text()
    assert text.startswith(f"# {name}") and "Reproduce" in text
    assert loaded.metadata["results"]["synthetic_test"]["scores"]
    assert loaded.path.stat().st_size < 8e6  # a few MB


@pytest.mark.parametrize("name", [n for n in SHIPPED if EXPECTED[n][3]])
def test_shipped_causal_model_streams_like_offline(name):
    model = load_checkpoint(shipped_models()[name]).model
    sep = StreamingSeparator(model)
    cfg = model.config
    x = torch.rand(
        1, cfg.audio_channels, cfg.sample_rate // 2, generator=torch.Generator().manual_seed(0)
    )
    x = 0.2 * (x * 2 - 1)
    state = sep.init_state(1)
    outs = []
    for start in range(0, x.shape[-1], 1000):
        y, state = sep.step(x[..., start : start + 1000], state)
        outs.append(y)
    tail, _ = sep.flush(state)
    y = torch.cat([*outs, tail], dim=-1)[..., sep.latency_samples :]
    with torch.no_grad():
        ref = model(x)
    assert (y - ref).abs().max().item() < 1e-4
