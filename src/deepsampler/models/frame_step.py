"""One STFT frame of a causal DeepSampler, with a fixed-size explicit state.

This is the model's only per-frame code: the PyTorch streaming engine runs
:func:`step_frame` eagerly and the ONNX export is :class:`FrameStepGraph`, the same function
with the state as flat graph inputs and outputs. Nothing here depends on the stream position
except through the state, so the graph has no control flow.

A call takes the spectrum of the newest frame ``f`` and returns the masks of frame
``i = f - lookahead`` (the look-ahead frames wait in a queue). Timing and equality with the
offline pass:

* the encoder and the first time-attention layer's projections run on frame ``f``;
* the first layer's query ``i`` attends keys ``(i - window, i + lookahead]``, later layers'
  keys ``(i - window, i]``: exactly the offline mask (:func:`time_attention_mask`);
* rotary angles come from the frame index in float64 (:meth:`Attention.rotary_angles`), as
  offline, so an hours-long stream rotates as precisely as its start.

K/V caches are rings: frame ``p`` lives in slot ``p mod M`` (``M_0 = window + lookahead``
for the first layer, ``window`` after), beside a validity flag. A slot counts only if it holds
a real frame: not one before the stream began (warm-up) nor a flush's padding frame
(``present`` false). A query always attends its own slot, so that a warm-up query with no valid
key stays finite (its output is never used, but a NaN would reach the caches).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import torch
from einops import rearrange
from torch import nn

from deepsampler.models.config import ModelConfig

if TYPE_CHECKING:
    from deepsampler.models.deepsampler import DeepSampler


@dataclass
class FrameState:
    """Everything :func:`step_frame` carries from one frame to the next; sizes never change.

    Axis legend: ``b`` batch, ``d`` features, ``f`` freq bins, ``n`` bands, ``h`` heads, ``e``
    head features, ``M_l`` ring slots of layer ``l``, ``la`` look-ahead frames.

    Attributes:
        position: ``[1]`` int64, index of the next frame to analyse.
        conv: per causal time convolution (encoder levels, then ``model.decoder`` in order),
            its last ``kernel - 1`` input frames ``[b, d, f, kernel - 1]``.
        keys, values: per time-attention layer, ring of rotated keys / values
            ``[b*n, h, M_l, e]``; frame ``p`` in slot ``p mod M_l``.
        valid: per layer ``[M_l]`` bool, whether the slot holds a real frame.
        queue_x, queue_q: first time layer's input tokens ``[b*n, la, d]`` and rotated queries
            ``[b*n, h, la, e]`` of the frames awaiting their look-ahead (frame ``p`` in slot
            ``p mod la``); queue_z: their latent ``[b, d_L, f_L, la]``; queue_skips: their
            encoder skips ``[b, d_i, f_i, la]``; queue_valid ``[la]`` bool: real frames.
            With no look-ahead they have ``la = 0`` slots and are not graph inputs.
    """

    position: torch.Tensor
    conv: list[torch.Tensor]
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    valid: list[torch.Tensor]
    queue_x: torch.Tensor
    queue_q: torch.Tensor
    queue_z: torch.Tensor
    queue_skips: list[torch.Tensor]
    queue_valid: torch.Tensor

    def tensors(self) -> list[torch.Tensor]:
        """The state as a flat list, in :func:`frame_state_specs` order (the graph's)."""
        out = [self.position, *self.conv]
        for k, v, ok in zip(self.keys, self.values, self.valid, strict=True):
            out += [k, v, ok]
        if self.queue_valid.shape[0]:  # the queue exists only with look-ahead
            out += [self.queue_x, self.queue_q, self.queue_z, *self.queue_skips, self.queue_valid]
        return out

    @classmethod
    def from_tensors(cls, config: ModelConfig, tensors: list[torch.Tensor]) -> FrameState:
        """Inverse of :meth:`tensors` for a model of ``config``."""
        levels, depth = len(config.enc_channels), config.depth
        it = iter(tensors)
        position = next(it)
        conv = [next(it) for _ in range(2 * levels - 1)]
        kv = [(next(it), next(it), next(it)) for _ in range(depth)]
        if config.lookahead:
            qx, qq, qz = next(it), next(it), next(it)
            skips = [next(it) for _ in range(levels - 1)]
            qvalid = next(it)
        else:  # empty queues, on the position's device
            qx = qq = qz = position.new_zeros(0, dtype=torch.float32)
            skips = [qz] * (levels - 1)
            qvalid = position.new_zeros(0, dtype=torch.bool)
        if next(it, None) is not None:
            raise ValueError("more state tensors than the config has")
        return cls(
            position,
            conv,
            [k for k, _, _ in kv],
            [v for _, v, _ in kv],
            [ok for _, _, ok in kv],
            qx,
            qq,
            qz,
            skips,
            qvalid,
        )

    def nbytes(self) -> int:
        """Bytes held in its tensors (constant over a stream)."""
        total = 0
        for f in fields(self):
            value = getattr(self, f.name)
            items = value if isinstance(value, list) else [value]
            total += sum(t.numel() * t.element_size() for t in items)
        return total


# a stream's state is saved with torch.save (tests/streaming); let weights_only loads read it
torch.serialization.add_safe_globals([FrameState])


def frame_state_specs(
    config: ModelConfig, batch: int = 1
) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Name -> (shape, dtype) of every state tensor, in :meth:`FrameState.tensors` order (the
    ONNX graph's input order after ``mag`` and ``present``)."""
    cfg = config
    specs: dict[str, tuple[tuple[int, ...], torch.dtype]] = {"position": ((1,), torch.int64)}
    f, levels = cfg.freq_bins, []
    for width, stride in zip(cfg.enc_channels, cfg.freq_strides, strict=True):
        f //= stride  # even strides with padding stride/2: exact
        levels.append((width, f))
    k = cfg.time_kernel - 1
    for i, (width, f) in enumerate(levels):
        specs[f"conv_enc{i}"] = ((batch, width, f, k), torch.float32)
    for j in range(1, len(levels)):  # model.decoder[j - 1] outputs level j - 1's shape
        width, f = levels[j - 1]
        specs[f"conv_dec{j}"] = ((batch, width, f, k), torch.float32)
    bn, h, e = batch * cfg.num_bands, cfg.heads, cfg.dim // cfg.heads
    for l in range(cfg.depth):
        m = ring_slots(cfg, l)
        specs[f"k{l}"] = ((bn, h, m, e), torch.float32)
        specs[f"v{l}"] = ((bn, h, m, e), torch.float32)
        specs[f"valid{l}"] = ((m,), torch.bool)
    la = cfg.lookahead
    if la:
        specs["queue_x"] = ((bn, la, cfg.dim), torch.float32)
        specs["queue_q"] = ((bn, h, la, e), torch.float32)
        specs["queue_z"] = ((batch, cfg.enc_channels[-1], cfg.latent_bins, la), torch.float32)
        for i, (width, f) in enumerate(levels[:-1]):
            specs[f"queue_s{i}"] = ((batch, width, f, la), torch.float32)
        specs["queue_valid"] = ((la,), torch.bool)
    return specs


def ring_slots(config: ModelConfig, layer: int) -> int:
    """Slots of time-attention layer ``layer``'s K/V ring: the keys one query may see."""
    return config.attn_window + (config.lookahead if layer == 0 else 0)


def initial_frame_state(
    config: ModelConfig, batch: int = 1, device: torch.device | str | None = None
) -> FrameState:
    """The state before the first frame: zeros (the offline left padding), nothing valid."""
    tensors = [
        torch.zeros(shape, dtype=dtype, device=device)
        for shape, dtype in frame_state_specs(config, batch).values()
    ]
    return FrameState.from_tensors(config, tensors)


def _put(
    buf: torch.Tensor, dim: int, slot: torch.Tensor, value: torch.Tensor, inplace: bool
) -> torch.Tensor:
    """``buf`` with index ``slot`` ``[1]`` of ``dim`` replaced by ``value`` (size 1 there).

    In place (``index_copy_``: the eager engine, which owns its state) writes one slot; else a
    copy with that slot written, addressed by broadcast indices over the dimensions up to
    ``dim``: one ONNX ScatterND on the ring as it is laid out. (A ``where`` over the whole ring
    cost 8 % more time per frame in speech-rt's ONNX step; ``index_copy`` along ``dim`` exports
    as a transpose of the ring, the scatter and a transpose back, about a third more.)"""
    if inplace:
        return buf.index_copy_(dim, slot, value)
    index = []
    for d in range(dim + 1):
        shape = [1] * (dim + 1)
        shape[d] = -1
        positions = slot if d == dim else torch.arange(buf.shape[d], device=buf.device)
        index.append(positions.view(shape))
    return buf.index_put(tuple(index), value)


def step_frame(
    model: DeepSampler,
    spec_frame: torch.Tensor,
    state: FrameState,
    present: bool | torch.Tensor = True,
    inplace: bool = False,
) -> tuple[torch.Tensor, FrameState]:
    """One STFT frame through a causal model.

    Args:
        model: the causal DeepSampler (eval mode).
        spec_frame: ``[b, c, F+1]`` the newest frame's spectrum (complex) or its magnitude.
        state: the state after the previous frame (:func:`initial_frame_state` at first).
        present: False for a frame past the end of the stream (a flush drains the look-ahead
            with such frames): it fills the slots but is never attended.
        inplace: write the rings into ``state``'s tensors (no copy; ``state`` is then spent)
            instead of returning new ones.

    Returns:
        masks ``[b, s, c, F+1]`` in [0, 1] for frame ``position - lookahead`` (the Nyquist bin
        reuses the top bin's; meaningless while that index is negative), and the new state.
    """
    cfg = model.config
    la, b = cfg.lookahead, spec_frame.shape[0]
    blocks = model.latent.blocks
    present = torch.as_tensor(present, dtype=torch.bool, device=spec_frame.device).reshape(1)
    f = state.position
    i = f - la  # the frame whose masks this call returns

    # encoder and the first time layer's projections of frame f
    x = model.features(spec_frame[..., None])  # [b, c, F, 1]
    conv = list(state.conv)
    skips = []
    for j, level in enumerate(model.encoder):
        x, conv[j] = level.step(x, conv[j])
        skips.append(x)
    z_new, skips = x, skips[:-1]
    tokens = rearrange(model.latent.split(z_new), "b n t d -> (b n) t d")
    q_new, k_new, v_new = blocks[0].time.attn.project(tokens, f)
    keys, values, valid = list(state.keys), list(state.values), list(state.valid)
    slot = torch.remainder(f, keys[0].shape[2])
    keys[0] = _put(keys[0], 2, slot, k_new, inplace)
    values[0] = _put(values[0], 2, slot, v_new, inplace)
    valid[0] = _put(valid[0], 0, slot, present, inplace)

    # frame i leaves the look-ahead queue (read before frame f takes its slot)
    qx, qq, qz, qskips, qvalid = (
        state.queue_x,
        state.queue_q,
        state.queue_z,
        list(state.queue_skips),
        state.queue_valid,
    )
    if la:
        qslot = torch.remainder(f, la)
        x, q = qx.index_select(1, qslot), qq.index_select(2, qslot)
        z, skips_i = qz.index_select(3, qslot), [s.index_select(3, qslot) for s in qskips]
        valid_i = qvalid.index_select(0, qslot)
        qx, qq = _put(qx, 1, qslot, tokens, inplace), _put(qq, 2, qslot, q_new, inplace)
        qz = _put(qz, 3, qslot, z_new, inplace)
        qskips = [_put(s, 3, qslot, new, inplace) for s, new in zip(qskips, skips, strict=True)]
        qvalid = _put(qvalid, 0, qslot, present, inplace)
    else:
        x, q, z, skips_i, valid_i = tokens, q_new, z_new, skips, present

    # the latent of frame i: time attention over the rings, then the subband layer
    own_slots: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # ring size -> slot, one-hot
    for l, block in enumerate(blocks):
        m = keys[l].shape[2]
        if m not in own_slots:  # the later layers share one ring size
            own = torch.remainder(i, m)
            own_slots[m] = own, torch.arange(m, device=own.device) == own
        own, own_hot = own_slots[m]
        if l:
            q, k, v = block.time.attn.project(x, i)
            keys[l] = _put(keys[l], 2, own, k, inplace)
            values[l] = _put(values[l], 2, own, v, inplace)
            valid[l] = _put(valid[l], 0, own, valid_i, inplace)
        x = block.time.attend_cached(x, q, keys[l], values[l], (valid[l] | own_hot)[None])
        x = block.band_tokens(x, b)
    z = z + model.latent.merge(rearrange(x, "(b n) t d -> b n t d", b=b))

    # decoder; a warm-up frame (no real frame i yet) must not enter the conv states
    levels = len(model.encoder)
    for j in reversed(range(len(model.decoder))):
        z, new = model.decoder[j].step(z, skips_i[j], conv[levels + j])
        conv[levels + j] = torch.where(valid_i, new, conv[levels + j])
    masks = model.head(z)[..., 0]  # [b, s, c, F]
    masks = torch.cat([masks, masks[..., -1:]], dim=-1)  # as apply_masks: Nyquist = top bin
    new_state = FrameState(f + 1, conv, keys, values, valid, qx, qq, qz, qskips, qvalid)
    return masks, new_state


class FrameStepGraph(nn.Module):
    """:func:`step_frame` with flat tensors, for ``torch.onnx.export``.

    ``forward(mag [b, c, F+1], present [1] bool, *state) -> (masks [b, s, c, F+1], *state)``,
    the state in :func:`frame_state_specs` order.
    """

    def __init__(self, model: DeepSampler) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(
        self, mag: torch.Tensor, present: torch.Tensor, *state: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        frame_state = FrameState.from_tensors(self.model.config, list(state))
        masks, frame_state = step_frame(self.model, mag, frame_state, present)
        return (masks, *frame_state.tensors())
