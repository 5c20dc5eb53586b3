"""The DeepSampler separator: STFT -> conv encoder -> BS-RoFormer latent -> conv decoder ->
one magnitude mask per source and channel -> mixture phase -> iSTFT.

The seams are separate methods (features, encoder, latent, decoder, masks); :meth:`step_frame`
runs them one STFT frame at a time with a fixed-size state (:mod:`deepsampler.models.frame_step`),
the step that both streaming engines run. ``forward`` never computes a loss.
"""

from __future__ import annotations

import torch
from torch import nn

from deepsampler.audio.stft import STFT
from deepsampler.models.blocks import DecoderLevel, EncoderLevel
from deepsampler.models.config import ModelConfig
from deepsampler.models.frame_step import FrameState, initial_frame_state, step_frame
from deepsampler.models.roformer import RoFormerLatent, time_attention_mask


class DeepSampler(nn.Module):
    """Mask-based source separator.

    ``forward``: mixture ``[b, c, samples]`` -> stems ``[b, s, c, samples]`` at the same rate,
    where ``c == config.audio_channels`` and ``s == len(config.sources)``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        self.stft = STFT(cfg.n_fft, cfg.hop)
        c, s = cfg.audio_channels, len(cfg.sources)
        # per-bin input normalisation (learned), as Open-Unmix does
        self.input_scale = nn.Parameter(torch.ones(cfg.freq_bins, 1))
        self.input_bias = nn.Parameter(torch.zeros(cfg.freq_bins, 1))
        widths = (c, *cfg.enc_channels)
        self.encoder = nn.ModuleList(
            EncoderLevel(widths[i], widths[i + 1], cfg.freq_strides[i], cfg.time_kernel)
            for i in range(len(cfg.enc_channels))
        )
        self.latent = RoFormerLatent(
            cfg.enc_channels[-1],
            cfg.latent_bins,
            cfg.band_width,
            cfg.dim,
            cfg.depth,
            cfg.heads,
            cfg.ff_mult,
            cfg.dropout,
        )
        # decoder level i (i >= 1) mirrors encoder level i and adds encoder level i-1's output;
        # the last step back to full resolution is a transposed conv straight to the mask
        # logits: a conv stack at full resolution would cost more than the rest of the network
        self.decoder = nn.ModuleList(
            DecoderLevel(
                cfg.enc_channels[i], cfg.enc_channels[i - 1], cfg.freq_strides[i], cfg.time_kernel
            )
            for i in range(1, len(cfg.enc_channels))
        )
        s0 = cfg.freq_strides[0]
        self.mask_head = nn.ConvTranspose2d(
            cfg.enc_channels[0], s * c, (2 * s0, 1), (s0, 1), (s0 // 2, 0)
        )

    # ---- seams -----------------------------------------------------------------------------
    def features(self, spec: torch.Tensor) -> torch.Tensor:
        """Mixture STFT ``[b, c, f+1, t]`` complex -> network input ``[b, c, f, t]``
        (compressed magnitude without the Nyquist bin, normalised per bin)."""
        mag = spec[:, :, : self.config.freq_bins].abs()
        return mag.pow(self.config.feature_power) * self.input_scale + self.input_bias

    def forward_encoder(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``[b, c, f, t]`` -> latent ``[b, d_L, f_L, t]`` and the skips of levels ``0..L-2``."""
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
        return x, skips[:-1]

    def forward_latent(
        self, z: torch.Tensor, frame_pos: torch.Tensor | None = None
    ) -> torch.Tensor:
        """BS-RoFormer over the latent ``[b, d_L, f_L, t]``; ``frame_pos [t]`` frame indices."""
        t = z.shape[-1]
        if frame_pos is None:
            frame_pos = torch.arange(t, device=z.device)
        masks: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
        if self.config.causal:
            window, ahead = self.config.attn_window, self.config.lookahead
            first = time_attention_mask(t, window, ahead, z.device)
            rest = first if ahead == 0 else time_attention_mask(t, window, 0, z.device)
            masks = (first, rest)
        return self.latent(z, frame_pos, masks)

    def forward_decoder(self, z: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """Latent and skips -> masks ``[b, s, c, f, t]`` in [0, 1]."""
        for level, skip in zip(reversed(self.decoder), reversed(skips), strict=True):
            z = level(z, skip)
        return self.head(z)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        """Last decoder features ``[b, d_0, f / s_0, t]`` -> masks ``[b, s, c, f, t]``."""
        logits = self.mask_head(z)
        b, _, f, t = logits.shape
        logits = logits.view(b, len(self.config.sources), self.config.audio_channels, f, t)
        if self.config.mask_activation == "softmax":
            return logits.softmax(dim=1)
        return logits.sigmoid()

    def apply_masks(self, spec: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Mixture ``[b, c, f+1, t]`` complex x masks ``[b, s, c, f, t]`` -> ``[b, s, c, f+1, t]``
        complex stems with the mixture's phase (the Nyquist bin reuses the top bin's mask)."""
        masks = torch.cat([masks, masks[..., -1:, :]], dim=-2)
        return spec.unsqueeze(1) * masks

    # ---- whole pass ------------------------------------------------------------------------
    def forward_masks(self, spec: torch.Tensor) -> torch.Tensor:
        """Mixture STFT ``[b, c, f+1, t]`` -> masks ``[b, s, c, f, t]``."""
        z, skips = self.forward_encoder(self.features(spec))
        return self.forward_decoder(self.forward_latent(z), skips)

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        """``[b, c, samples]`` -> ``[b, s, c, samples]``."""
        if mixture.dim() != 3 or mixture.shape[1] != self.config.audio_channels:
            raise ValueError(
                f"expected [batch, {self.config.audio_channels}, samples], "
                f"got {list(mixture.shape)}"
            )
        spec = self.stft(mixture)
        stems = self.apply_masks(spec, self.forward_masks(spec))
        return self.stft.inverse(stems, mixture.shape[-1])

    # ---- one frame at a time (causal models) -------------------------------------------------
    def initial_frame_state(self, batch: int = 1) -> FrameState:
        """The :meth:`step_frame` state before a stream's first frame, on the model's device."""
        return initial_frame_state(self.config, batch, self.input_scale.device)

    def step_frame(
        self,
        spec_frame: torch.Tensor,
        state: FrameState,
        present: bool | torch.Tensor = True,
        inplace: bool = False,
    ) -> tuple[torch.Tensor, FrameState]:
        """Mixture STFT frame ``[b, c, f+1]`` (complex, or its magnitude) -> masks
        ``[b, s, c, f+1]`` of the frame ``lookahead`` frames earlier, and the new state; see
        :func:`deepsampler.models.frame_step.step_frame` for ``present`` and ``inplace``.
        Frame by frame it equals :meth:`forward_masks` of the whole (causal) spectrum."""
        if not self.config.causal:
            raise ValueError("step_frame needs a causal model (config.causal = True)")
        return step_frame(self, spec_frame, state, present, inplace)

    def receptive_field(self) -> tuple[int, int]:
        """``(past, future)``: how many STFT frames before and after frame ``t`` its masks
        depend on (for a causal model). Past: ``time_kernel - 1`` per causal convolution
        (encoder and decoder levels) plus ``attn_window - 1`` per time-attention layer; future:
        the look-ahead frames (first layer only). Everything else works within a frame."""
        cfg = self.config
        convs = len(self.encoder) + len(self.decoder)
        past = (cfg.time_kernel - 1) * convs + len(self.latent.blocks) * (cfg.attn_window - 1)
        return past, cfg.lookahead

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
