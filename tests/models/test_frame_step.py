"""The model's frame step: frame by frame it equals the offline masks, its state never changes
size, its K/V rings wrap around exactly, and flush frames are never attended."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepsampler.models import DeepSampler, preset_config
from deepsampler.models.frame_step import FrameState, frame_state_specs


def model_for(lookahead: int, depth: int, window: int = 6, seed: int = 0) -> DeepSampler:
    torch.manual_seed(seed)
    cfg = preset_config("tiny", lookahead=lookahead, depth=depth, attn_window=window)
    return DeepSampler(cfg).eval()


def offline_masks(model: DeepSampler, spec: torch.Tensor, first: int = 0) -> torch.Tensor:
    """Masks ``[b, s, c, F+1, t]`` of the whole spectrum, frame ``t`` at position ``first + t``
    (the Nyquist bin repeating the top bin's, as the frame step returns them)."""
    z, skips = model.forward_encoder(model.features(spec))
    pos = first + torch.arange(spec.shape[-1])
    masks = model.forward_decoder(model.forward_latent(z, pos), skips)
    return torch.cat([masks, masks[..., -1:, :]], dim=-2)


def stepped_masks(
    model: DeepSampler,
    spec: torch.Tensor,
    state: FrameState,
    inplace: bool = False,
    drain: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[FrameState]]:
    """Every frame of ``spec [b, c, F+1, t]`` through the step, then ``lookahead`` flush frames
    (``drain`` or zeros, not present); the masks of frames ``0..t-1`` and each state after."""
    la, frames = model.config.lookahead, spec.shape[-1]
    masks, states = [], []
    with torch.inference_mode():
        for t in range(frames + la):
            if t < frames:
                frame, present = spec[..., t], True
            else:
                frame = drain[..., t - frames] if drain is not None else spec[..., 0] * 0
                present = False
            m, state = model.step_frame(frame, state, present, inplace=inplace)
            states.append(state)
            if t >= la:
                masks.append(m)
    return torch.stack(masks, dim=-1), states


def spectrum(model: DeepSampler, batch: int, samples: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, model.config.audio_channels, samples, generator=gen) * 2 - 1
    return model.stft(x)


@pytest.mark.parametrize("lookahead,depth", [(0, 1), (0, 2), (1, 2), (3, 3)])
@pytest.mark.parametrize("inplace", [False, True])
def test_frame_by_frame_equals_offline_through_many_ring_wraparounds(lookahead, depth, inplace):
    model = model_for(lookahead, depth, window=4)
    spec = spectrum(model, 2, 24 * model.config.hop, seed=lookahead + depth)  # 25 frames
    with torch.inference_mode():
        ref = offline_masks(model, spec)
    got, _ = stepped_masks(model, spec, model.initial_frame_state(2), inplace)
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() < 1e-5


def test_state_is_fixed_size_and_matches_the_export_specs():
    model = model_for(2, 2)
    specs = frame_state_specs(model.config, batch=1)
    _, states = stepped_masks(
        model, spectrum(model, 1, 30 * model.config.hop, 1), model.initial_frame_state()
    )
    for state in states:
        tensors = state.tensors()
        assert len(tensors) == len(specs)
        for t, (shape, dtype) in zip(tensors, specs.values(), strict=True):
            assert (tuple(t.shape), t.dtype) == (shape, dtype)
    assert states[0].nbytes() == states[-1].nbytes()
    assert int(states[-1].position) == len(states)
    again = FrameState.from_tensors(model.config, states[-1].tensors())
    assert all(a is b for a, b in zip(again.tensors(), states[-1].tensors(), strict=True))


@pytest.mark.parametrize("lookahead", [0, 2])
def test_flush_frames_are_never_attended(lookahead):
    """Whatever the frames after the end hold, the last real frames' masks do not change."""
    model = model_for(lookahead, 2)
    spec = spectrum(model, 1, 12 * model.config.hop, seed=5)
    loud = torch.randn(*spec.shape[:-1], max(lookahead, 1), dtype=spec.dtype) * 100
    a, _ = stepped_masks(model, spec, model.initial_frame_state())
    b, _ = stepped_masks(model, spec, model.initial_frame_state(), drain=loud)
    assert torch.equal(a, b)


def test_a_stream_hours_in_rotates_as_precisely_as_its_start():
    """Frame positions in the millions (a day at 11.6 ms hops): the angles are computed from
    the position in float64, so the step still equals the offline pass at that position."""
    model = model_for(1, 2)
    first = 7_500_001
    spec = spectrum(model, 1, 20 * model.config.hop, seed=6)
    state = model.initial_frame_state()
    state.position = torch.tensor([first])
    got, _ = stepped_masks(model, spec, state)
    with torch.inference_mode():
        ref = offline_masks(model, spec, first)
    assert (got - ref).abs().max().item() < 1e-5


def test_offline_model_has_no_frame_step():
    model = DeepSampler(preset_config("tiny", causal=False))
    with pytest.raises(ValueError, match="causal"):
        model.step_frame(torch.zeros(1, 2, 129), model.initial_frame_state())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rotate_is_bitwise_rotary_embedding_torchs_apply_rotary_emb(dtype):
    from rotary_embedding_torch import apply_rotary_emb

    from deepsampler.models.roformer import Attention, rotate

    angles = Attention(64, 2).rotary_angles(torch.arange(9) + 123_456)
    x = torch.randn(2, 2, 9, 32, generator=torch.Generator().manual_seed(0)).to(dtype)
    assert torch.equal(rotate(x, angles.cos(), angles.sin()), apply_rotary_emb(angles, x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rotate_in_an_export_gives_the_same_bits(dtype, monkeypatch):
    """The exported graph swaps pairs by a MatMul with pair_swap; eager code by reshaping."""
    from deepsampler.models.roformer import Attention, pair_swap, rotate

    angles = Attention(64, 2).rotary_angles(torch.arange(9) + 77)
    x = torch.randn(2, 2, 9, 32, generator=torch.Generator().manual_seed(1)).to(dtype)
    eager = rotate(x, angles.cos(), angles.sin())
    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
    assert torch.equal(rotate(x, angles.cos(), angles.sin()), eager)
    swap = pair_swap(4, torch.float32)
    assert swap.tolist() == [[0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1], [0, 0, -1, 0]]


@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    data=st.data(),
)
@settings(max_examples=40, deadline=None)
def test_put_out_of_place_equals_index_copy(shape, data):
    """The exported ring write (broadcast-index ScatterND) writes exactly one slot, as the eager
    engine's in-place ``index_copy_`` does, and leaves the old ring as it was."""
    from deepsampler.models.frame_step import _put

    dim = data.draw(st.integers(0, len(shape) - 1))
    slot = torch.tensor([data.draw(st.integers(0, shape[dim] - 1))])
    gen = torch.Generator().manual_seed(len(shape) * 10 + dim)
    buf = torch.randn(shape, generator=gen)
    value = torch.randn([*shape[:dim], 1, *shape[dim + 1 :]], generator=gen)
    before = buf.clone()
    out = _put(buf, dim, slot, value, inplace=False)
    assert torch.equal(buf, before)
    assert torch.equal(out, before.clone().index_copy_(dim, slot, value))
    flags = torch.zeros(shape[0], dtype=torch.bool)
    hit = _put(flags, 0, torch.tensor([shape[0] - 1]), torch.tensor([True]), inplace=False)
    assert hit.tolist() == [False] * (shape[0] - 1) + [True]
