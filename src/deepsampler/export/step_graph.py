"""The streaming step of a causal DeepSampler as a fixed-shape graph (one STFT frame per call).

Everything that depends on the stream position (rotary angles, which cache slots hold real
frames, whether the synthesised frame exists yet) comes in as inputs computed by the runner, so
the graph itself has no control flow and exports to ONNX. STFT and iSTFT stay outside (numpy):
the graph maps one frame's magnitude to the masks of the frame ``lookahead`` frames earlier.

State layout (all float32, batch ``b`` = 1 when exported):
    conv_i       ``[b, d, f, kernel - 1]`` per causal time conv (encoder levels, decoder levels)
    k_l, v_l     ``[b*n, h, M_l, e]`` per time-attention layer; ``M_0 = window + lookahead``,
                 ``M_l = window`` after; slot ``j`` holds frame ``newest - M_l + 1 + j``
    pend_x       ``[b*n, la, d]`` first-layer tokens awaiting look-ahead (``la >= 1`` only)
    pend_q       ``[b*n, h, la, e]`` their rotated queries
    pend_z       ``[b, d_L, f_L, la]`` their latent; pend_s_i their encoder skips
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from deepsampler.models.deepsampler import DeepSampler


def state_shapes(model: DeepSampler, batch: int = 1) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every state tensor of the step graph, in input order."""
    cfg = model.config
    shapes: dict[str, tuple[int, ...]] = {}
    f, widths = cfg.freq_bins, []
    for i, (width, stride) in enumerate(zip(cfg.enc_channels, cfg.freq_strides, strict=True)):
        f //= stride
        widths.append((width, f))
        shapes[f"conv_enc{i}"] = (batch, width, f, cfg.time_kernel - 1)
    for j in range(1, len(cfg.enc_channels)):
        width, f = widths[j - 1]
        shapes[f"conv_dec{j}"] = (batch, width, f, cfg.time_kernel - 1)
    bn, h, e = batch * cfg.num_bands, cfg.heads, cfg.dim // cfg.heads
    for l in range(cfg.depth):
        m = cfg.attn_window + (cfg.lookahead if l == 0 else 0)
        shapes[f"k{l}"] = (bn, h, m, e)
        shapes[f"v{l}"] = (bn, h, m, e)
    la = cfg.lookahead
    if la:
        shapes["pend_x"] = (bn, la, cfg.dim)
        shapes["pend_q"] = (bn, h, la, e)
        shapes["pend_z"] = (batch, cfg.enc_channels[-1], cfg.latent_bins, la)
        for i in range(len(cfg.enc_channels) - 1):
            width, f = widths[i]
            shapes[f"pend_s{i}"] = (batch, width, f, la)
    return shapes


class StepGraph(nn.Module):
    """``forward(mag, angles_new, angles_out, key_mask0, key_mask, valid, *state)`` ->
    ``(masks, *new_state)``.

    Args (tensors):
        mag: ``[b, c, f+1]`` magnitude of the newest STFT frame.
        angles_new: ``[1, e]`` rotary angles of the newest frame's position.
        angles_out: ``[1, e]`` rotary angles of the synthesised frame's position.
        key_mask0: ``[M_0]`` bool, which first-layer cache slots the query may attend.
        key_mask: ``[M_1]`` bool, the same for the later layers (unused when depth is 1).
        valid: ``[1]`` float, 1 if the synthesised frame exists (its index >= 0), else 0.

    Returns ``masks [b, s, c, f]`` for the synthesised frame and the new state.
    """

    def __init__(self, model: DeepSampler) -> None:
        super().__init__()
        self.model = model.eval()
        self.names = list(state_shapes(model))

    def forward(self, mag, angles_new, angles_out, key_mask0, key_mask, valid, *state):
        model, cfg = self.model, self.model.config
        st = dict(zip(self.names, state, strict=True))
        new: dict[str, torch.Tensor] = {}
        x = model.features(mag[..., None])  # features() takes |.| of a complex or real frame
        skips = []
        for i, level in enumerate(model.encoder):
            x, new[f"conv_enc{i}"] = level.step(x, st[f"conv_enc{i}"])
            skips.append(x)
        z_new, skips = x, skips[:-1]
        b = mag.shape[0]
        tokens = rearrange(model.latent.split(z_new), "b n t d -> (b n) t d")
        attn0 = model.latent.blocks[0].time.attn
        q_new, k_new, v_new = attn0.project_rotated(tokens, angles_new)
        new["k0"] = torch.cat([st["k0"][:, :, 1:], k_new], dim=2)
        new["v0"] = torch.cat([st["v0"][:, :, 1:], v_new], dim=2)
        if cfg.lookahead:
            x_out, q_out = st["pend_x"][:, :1], st["pend_q"][:, :, :1]
            z_out = st["pend_z"][..., :1]
            skips_out = [st[f"pend_s{i}"][..., :1] for i in range(len(skips))]
            new["pend_x"] = torch.cat([st["pend_x"][:, 1:], tokens], dim=1)
            new["pend_q"] = torch.cat([st["pend_q"][:, :, 1:], q_new], dim=2)
            new["pend_z"] = torch.cat([st["pend_z"][..., 1:], z_new], dim=-1)
            for i, s in enumerate(skips):
                new[f"pend_s{i}"] = torch.cat([st[f"pend_s{i}"][..., 1:], s], dim=-1)
        else:
            x_out, q_out, z_out, skips_out = tokens, q_new, z_new, skips

        bands = torch.arange(cfg.num_bands)
        x = x_out
        for l, block in enumerate(model.latent.blocks):
            layer = block.time
            if l == 0:
                keys, values, mask = new["k0"], new["v0"], key_mask0
            else:
                q_out, k, v = layer.attn.project_rotated(x, angles_out)
                # slots shift only when a real frame is synthesised
                keys = torch.where(valid > 0, torch.cat([st[f"k{l}"][:, :, 1:], k], 2), st[f"k{l}"])
                values = torch.where(
                    valid > 0, torch.cat([st[f"v{l}"][:, :, 1:], v], 2), st[f"v{l}"]
                )
                new[f"k{l}"], new[f"v{l}"], mask = keys, values, key_mask
            x = x + layer.attn.attend(q_out, keys, values, mask[None, :])
            x = x + layer.ff(x)
            x = rearrange(x, "(b n) t d -> (b t) n d", b=b)
            x = block.band(x, bands)
            x = rearrange(x, "(b t) n d -> (b n) t d", b=b)
        z = z_out + model.latent.merge(rearrange(x, "(b n) t d -> b n t d", b=b))
        for j in reversed(range(1, len(model.encoder))):
            name = f"conv_dec{j}"
            z, conv = model.decoder[j - 1].step(z, skips_out[j - 1], st[name])
            new[name] = torch.where(valid > 0, conv, st[name])
        masks = model.head(z)[..., 0]
        return (masks, *[new[n] for n in self.names])
