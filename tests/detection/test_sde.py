"""The siren detector network: streaming in any blocks equals the offline pass, nothing looks
ahead, the shipped size stays small; and the exact offline separation for detection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepsampler.detection import separation
from deepsampler.detection.separation import CausalChunks
from deepsampler.models import DeepSampler, preset_config
from deepsampler.models.sde import SDEConfig, SDEModel
from deepsampler.streaming import StreamingSeparator
from deepsampler.streaming.processor import StreamProcessor
from deepsampler.training.config import load_train_config
from tests.detection.conftest import SR, TINY_SDE, street


def model(**cfg) -> SDEModel:
    torch.manual_seed(1)
    return SDEModel(SDEConfig(**{**TINY_SDE, **cfg})).eval()


def signals(seconds: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    mix = torch.from_numpy(street(seconds, 3, (1.0, 2.5)))
    return mix, 0.5 * mix + 0.01 * torch.randn(
        mix.shape, generator=torch.Generator().manual_seed(2)
    )


@pytest.mark.parametrize(
    "cfg",
    [
        {},
        {"gru": 0},
        {"use_separation": False},
        {"frontend": "pcen"},
        {"frontend": "pcen", "use_separation": False},
    ],
)
def test_streaming_in_random_blocks_equals_the_offline_pass(cfg):
    net = model(**cfg)
    mix, siren = signals()
    sep = net.config.use_separation
    with torch.no_grad():
        offline = net(mix, siren if sep else None)[0]
    assert offline.shape[-1] == net.config.frames(mix.shape[-1]) > 100
    state = net.init_state()
    rng = np.random.default_rng(0)
    out, i = [], 0
    while i < mix.shape[-1]:
        m = int(rng.choice([1, 7, 255, 256, 1000, 4000]))
        logits, state = net.step(mix[:, i : i + m], siren[:, i : i + m] if sep else None, state)
        out.append(logits[0])
        i += m
    torch.testing.assert_close(torch.cat(out), offline, atol=1e-5, rtol=1e-5)
    assert state.frames == offline.shape[-1]


@pytest.mark.parametrize("frontend", ["log", "pcen"])
def test_nothing_looks_ahead(frontend):
    net = model(frontend=frontend)
    mix, siren = signals()
    cut = 20000
    later = mix.clone()
    later[:, cut:] = torch.randn_like(later[:, cut:])
    with torch.no_grad():
        a, b = net(mix, siren)[0], net(later, siren)[0]
    # frames ending before the change are untouched; the first frame reaching it changes
    done = (cut - net.config.n_fft) // net.config.hop + 1
    torch.testing.assert_close(a[:done], b[:done])
    assert not torch.allclose(a[done], b[done])


def test_pcen_ignores_the_level_and_lifts_a_tone_out_of_a_steady_bed():
    """PCEN's features barely move when the whole signal is 20 dB louder, and a tone entering
    steady noise stands out in its bands for a while, then fades as the running mean adapts."""
    net = model(frontend="pcen", use_separation=False, n_mels=32, pcen_seconds=0.5)
    rng = np.random.default_rng(0)
    n = 3 * SR
    bed = 0.01 * rng.standard_normal(n)
    t = np.arange(n) / SR
    tone = np.where(t >= 1.5, 0.05 * np.sin(2 * np.pi * 1000 * t), 0.0)
    x = torch.from_numpy((bed + tone)[None].astype(np.float32))
    quiet, _ = net.pcen(x, None)
    loud, _ = net.pcen(10 * x, None)
    spread = quiet.max() - quiet.min()
    assert (loud - quiet).abs().mean() < 0.02 * spread and (loud - quiet).abs().max() < 0.1 * spread
    logs = net.log_mel(10 * x) - net.log_mel(x)  # the log front-end moves by 20 dB / 25 dB
    assert logs.abs().mean() > 0.75
    band = int(np.argmax(net.mel[int(1000 / SR * net.config.n_fft)].numpy()))
    frame = lambda s: round((s * SR - net.config.n_fft / 2) / net.config.hop)  # noqa: E731
    before, onset, late = (quiet[0, band, frame(s)] for s in (1.4, 1.6, 2.9))
    assert onset > 3 * before and late < 0.8 * onset


def test_the_shipped_detector_config_is_small():
    cfg = load_train_config("configs/siren-sde.yaml")
    net = SDEModel(cfg.detector_config())
    assert net.num_parameters() < 200_000
    assert net.config.use_separation and net.config.sample_rate == 16000


def test_separation_needs_the_siren_stem():
    net = model()
    mix, _ = signals()
    with pytest.raises(ValueError, match="siren stem"):
        net(mix, None)


def tiny_separator(lookahead: int = 0) -> DeepSampler:
    torch.manual_seed(0)
    cfg = preset_config(
        "tiny",
        sources=("siren", "background"),
        sample_rate=SR,
        audio_channels=1,
        attn_window=8,
        lookahead=lookahead,
    )
    return DeepSampler(cfg).eval()


def run_chunks(sep: DeepSampler, x: np.ndarray, cuts: list[int]) -> np.ndarray:
    chunks = CausalChunks(sep, chunk_seconds=0.1)
    out, edges = [], [0, *cuts, x.shape[-1]]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        out += chunks.push(x[:, a:b])
    return np.concatenate(out + chunks.finish(), -1)


@pytest.mark.parametrize("lookahead", [0, 2])
def test_causal_chunks_equal_the_streaming_engine(lookahead, monkeypatch):
    sep = tiny_separator(lookahead)
    x = street(2.0, 5, (0.5, 1.5))
    processor = StreamProcessor(StreamingSeparator(sep), SR, sep.config.hop)
    streamed = np.concatenate(processor.push(x) + processor.finish(), -1)
    # 0.1 s chunks: about 15 of them, each seam a chance to differ
    chunked = run_chunks(sep, x, [1000, 1001, 17000])
    assert chunked.shape == streamed.shape == (2, 1, x.shape[-1])
    np.testing.assert_allclose(chunked, streamed, atol=2e-6)
    # without its past context a chunk starts cold and differs from the stream at every seam
    monkeypatch.setattr(separation, "receptive_field", lambda model: (0, 0))
    assert np.abs(run_chunks(sep, x, []) - streamed).max() > 1e-4
