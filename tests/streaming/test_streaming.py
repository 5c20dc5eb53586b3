"""Streaming == offline (delayed by the latency), causality, state save/restore, bounded state."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsampler.models import DeepSampler, preset_config
from deepsampler.streaming import StreamingSeparator
from tests.conftest import continue_from_clone


def make(seed: int = 0, **overrides) -> StreamingSeparator:
    torch.manual_seed(seed)
    cfg = preset_config("tiny", **{"attn_window": 6, "depth": 2, **overrides})
    return StreamingSeparator(DeepSampler(cfg).eval())


def stream(sep: StreamingSeparator, x: torch.Tensor, sizes) -> torch.Tensor:
    state = sep.init_state(x.shape[0])
    outs, pos, k = [], 0, 0
    while pos < x.shape[-1]:
        size = sizes[k % len(sizes)]
        y, state = sep.step(x[..., pos : pos + size], state)
        assert y.shape[-1] == min(size, x.shape[-1] - pos)  # as many out as in
        outs.append(y)
        pos, k = pos + size, k + 1
    tail, state = sep.flush(state)
    assert tail.shape[-1] == sep.latency_samples
    return torch.cat([*outs, tail], dim=-1)


def offline(sep: StreamingSeparator, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return sep.model(x)


SEPS = {la: make(lookahead=la) for la in (0, 1, 3)}


@settings(max_examples=25, deadline=None)
@given(
    lookahead=st.sampled_from([0, 1, 3]),
    sizes=st.lists(
        st.sampled_from([1, 2, 3, 7, 127, 128, 129, 256, 1000, 4099]), min_size=1, max_size=4
    ),
    length=st.integers(1, 4000),
    batch=st.integers(1, 2),
)
def test_streaming_equals_offline_delayed_by_latency(lookahead, sizes, length, batch):
    sep = SEPS[lookahead]
    x = torch.rand(batch, 2, length, generator=torch.Generator().manual_seed(length)) * 2 - 1
    y = stream(sep, x, sizes)
    latency = sep.latency_samples
    assert y.shape == (batch, 4, 2, length + latency)
    assert y[..., :latency].abs().max().item() == 0.0
    assert (y[..., latency:] - offline(sep, x)).abs().max().item() < 1e-4


@pytest.mark.parametrize("chunk", [1, 13, 128, 300])
def test_chunk_sizes_one_prime_hop_and_more_than_the_window(chunk):
    sep = SEPS[1]
    x = torch.rand(1, 2, 1500, generator=torch.Generator().manual_seed(chunk)) * 2 - 1
    y = stream(sep, x, [chunk])
    assert (y[..., sep.latency_samples :] - offline(sep, x)).abs().max().item() < 1e-4


def test_future_samples_do_not_change_past_outputs():
    sep = SEPS[3]
    x = torch.rand(1, 2, 3000, generator=torch.Generator().manual_seed(0)) * 2 - 1
    changed = x.clone()
    changed[..., 2000:] = torch.rand(1, 2, 1000) * 2 - 1
    a, b = (sep.step(v[..., :2500], sep.init_state())[0] for v in (x, changed))
    # stream output k is offline sample k - latency: it may depend on inputs up to k only
    assert torch.equal(a[..., :2000], b[..., :2000])
    assert not torch.equal(a, b)


def test_state_save_and_restore_continues_identically():
    sep = SEPS[1]
    x = torch.rand(1, 2, 3000, generator=torch.Generator().manual_seed(1)) * 2 - 1
    _, state = sep.step(x[..., :1234], sep.init_state())
    continue_from_clone(sep, state, x[..., 1234:])


def test_state_survives_torch_save(tmp_path):
    sep = SEPS[0]
    x = torch.rand(1, 2, 2000, generator=torch.Generator().manual_seed(2)) * 2 - 1
    _, state = sep.step(x[..., :700], sep.init_state())
    torch.save(state.__dict__, tmp_path / "state.pt")
    from deepsampler.streaming import StreamState

    restored = StreamState(**torch.load(tmp_path / "state.pt", weights_only=True))
    a, _ = sep.step(x[..., 700:], state)
    b, _ = sep.step(x[..., 700:], restored)
    assert torch.equal(a, b)


def check_bounded(seconds: int) -> None:
    """Stream ``seconds`` at 22.05 kHz in 0.1 s blocks: once the attention window is full the
    K/V caches stop growing, and the state's size only wobbles with the hop phase."""
    sep = make(lookahead=2, attn_window=16, depth=2)
    state = sep.init_state()
    block = torch.rand(1, 2, 2205) * 0.1
    sizes, cache = [], []
    steps = seconds * 10
    for i in range(steps):
        _, state = sep.step(block, state)
        if i >= 20:  # past the first 2 s (window 16 frames = 0.09 s)
            sizes.append(state.nbytes())
            cache.append([k.shape[2] for k in state.keys])
    assert max(c[0] for c in cache) <= 16 + 2 + 1  # first layer: window + look-ahead
    assert max(c[1] for c in cache) <= 16 + 1  # later layers: the window
    half = len(sizes) // 2
    # the buffered input and output wobble with the hop phase, whose cycle may be longer than
    # a short run's half: allow one hop of stereo float32 more, far less than a growing cache
    # would add in the second half (at least one K/V row per frame)
    wobble = sep.config.hop * 2 * 4
    assert max(sizes[half:]) <= max(sizes[:half]) + wobble  # no growth in the second half
    assert state.samples_in == steps * 2205


def test_stream_state_stays_bounded():
    check_bounded(10)


@pytest.mark.slow
def test_ten_minute_stream_state_stays_bounded():
    check_bounded(10)


def test_refuses_offline_models_and_bad_shapes():
    with pytest.raises(ValueError, match="causal"):
        StreamingSeparator(DeepSampler(preset_config("tiny", causal=False)))
    sep = SEPS[0]
    with pytest.raises(ValueError, match="expected"):
        sep.step(torch.zeros(1, 3, 10), sep.init_state())
    _, state = sep.flush(sep.init_state())
    with pytest.raises(RuntimeError, match="flushed"):
        sep.step(torch.zeros(1, 2, 10), state)


def test_latency_reported():
    sep = SEPS[1]
    cfg = sep.config
    assert sep.latency_samples == cfg.n_fft + cfg.hop
    assert sep.latency_ms == pytest.approx(1000 * (cfg.n_fft + cfg.hop) / cfg.sample_rate)


def test_the_model_state_never_changes_size():
    """The frame step's state (conv states, K/V rings, look-ahead queue) keeps its shapes from
    the first call on, whatever the block sizes."""
    sep = SEPS[3]
    state = sep.init_state()
    first = [(t.shape, t.dtype) for t in state.frame.tensors()]
    gen = torch.Generator().manual_seed(3)
    for size in (1, 127, 128, 1000, 4099, 7, 300):
        _, state = sep.step(torch.rand(1, 2, size, generator=gen), state)
        assert [(t.shape, t.dtype) for t in state.frame.tensors()] == first
