"""The siren detector network (the seed's ``sde_model``): a small causal sound-event detector.

Per frame it reads log-mel features of the mixture and, with ``use_separation``, of the
separated siren stem too (the separator's estimate tells it which part of the energy looks like
a siren), and gives one logit: the siren probability of that frame after a sigmoid.

Frames: frame ``t`` covers samples ``[t*hop, t*hop + n_fft)`` of the signal (no centring pad:
a frame exists once its last sample has arrived, so the network never waits for the future);
only whole frames are made, so ``n`` samples give ``(n - n_fft) // hop + 1`` frames (0 below
``n_fft``). Network: a 1x1 input projection, causal dilated temporal convolutions (residual,
layer norm over channels per frame), a GRU, a linear head. Nothing looks at a later frame.

Streaming: :meth:`SDEModel.step` takes any number of new samples with an explicit
:class:`SDEState` (samples not yet in a whole frame, each convolution's last input frames, the
GRU's hidden state) and returns the logits of the frames those samples completed; fed a signal
in any blocks, it gives :meth:`SDEModel.forward`'s logits to float rounding.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# log10 of a mel band's mean power is about -10 (digital near-silence, the floor below) to 0
# (full scale); this fixed shift and scale bring it near [-1, 1] before the learned affine, so
# the first steps of training see inputs of a sane size
LOG_FLOOR = 1e-10
LOG_SHIFT = 5.0
LOG_SCALE = 2.5


@dataclass(frozen=True)
class SDEConfig:
    """Everything that fixes an :class:`SDEModel`'s shape and behaviour.

    Features: ``n_fft``-sample Hann frames every ``hop`` samples at ``sample_rate`` Hz, power
    spectrum summed into ``n_mels`` triangular mel bands between ``f_min`` and ``f_max`` Hz
    (``None``: half the sample rate), log10. ``use_separation``: also the separated siren stem's
    bands (twice the inputs); False reads the mixture alone (the baseline that shows what
    separation adds). ``frontend``: ``log`` (log10 band powers) or ``pcen`` (per-channel energy
    normalisation: each band's power over its causal running mean of ``pcen_seconds``, which
    takes out the level and a steady background's colour, so a tone that rises out of the
    street stands out whatever the recording's level and equalisation). Network: ``channels``
    wide, one causal convolution of ``kernel`` frames per entry of ``dilations``, a GRU of
    ``gru`` units (0: none), ``dropout`` in training.
    """

    sample_rate: int = 16000
    n_fft: int = 512
    hop: int = 256
    n_mels: int = 48
    f_min: float = 50.0
    f_max: float | None = None
    use_separation: bool = True
    channels: int = 64
    kernel: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    gru: int = 64
    dropout: float = 0.0
    frontend: str = "log"
    pcen_seconds: float = 0.5

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate <= 0:
            problems.append("sample_rate must be > 0")
        if self.n_fft < 16 or self.hop < 1 or self.hop > self.n_fft:
            problems.append("need n_fft >= 16 and 1 <= hop <= n_fft")
        top = self.sample_rate / 2 if self.f_max is None else self.f_max
        if not 0 <= self.f_min < top <= self.sample_rate / 2:
            problems.append("need 0 <= f_min < f_max <= sample_rate / 2")
        if self.n_mels < 1 or self.n_mels > self.n_fft // 2:
            problems.append("n_mels must be in [1, n_fft / 2]")
        if self.channels < 1 or self.kernel < 1 or any(d < 1 for d in self.dilations):
            problems.append("channels, kernel and dilations must be >= 1")
        if self.gru < 0 or not 0 <= self.dropout < 1:
            problems.append("gru must be >= 0 and dropout in [0, 1)")
        if self.frontend not in ("log", "pcen") or self.pcen_seconds <= 0:
            problems.append("frontend must be 'log' or 'pcen', and pcen_seconds > 0")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def inputs(self) -> int:
        """Features per frame: mel bands of the mixture (and of the siren stem)."""
        return self.n_mels * (2 if self.use_separation else 1)

    @property
    def frame_seconds(self) -> float:
        """Seconds between frames."""
        return self.hop / self.sample_rate

    def frames(self, samples: int) -> int:
        """Whole frames in ``samples`` samples."""
        return 0 if samples < self.n_fft else (samples - self.n_fft) // self.hop + 1

    def frame_centre(self, index: np.ndarray | int) -> np.ndarray | float:
        """Seconds from the first sample to the centre of frame ``index``."""
        return (np.asarray(index) * self.hop + self.n_fft / 2) / self.sample_rate

    def frame_boundary(self, index: np.ndarray | int) -> np.ndarray | float:
        """Seconds of the boundary before frame ``index`` (half a hop before its centre): an
        event of frames ``[a, b)`` lasts from ``frame_boundary(a)`` to ``frame_boundary(b)``."""
        return (np.asarray(index) * self.hop + (self.n_fft - self.hop) / 2) / self.sample_rate


def mel_filterbank(config: SDEConfig) -> np.ndarray:
    """Triangular filters ``[n_fft // 2 + 1, n_mels]`` on the HTK mel scale, each peaking at 1."""
    sr, n = config.sample_rate, config.n_fft
    top = sr / 2 if config.f_max is None else config.f_max

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    edges = 700.0 * (10 ** (np.linspace(mel(config.f_min), mel(top), config.n_mels + 2) / 2595) - 1)
    freqs = np.arange(n // 2 + 1) * sr / n
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs[:, None] - lo) / np.maximum(mid - lo, 1e-9)
    falling = (hi - freqs[:, None]) / np.maximum(hi - mid, 1e-9)
    fb = np.clip(np.minimum(rising, falling), 0.0, None)
    # a band narrower than one bin would hold no bin at all: give it its nearest bin
    for j in np.flatnonzero(fb.sum(0) == 0):
        fb[int(np.argmin(np.abs(freqs - mid[j]))), j] = 1.0
    return fb.astype(np.float32)


@dataclass
class SDEState:
    """Everything :meth:`SDEModel.step` carries from one call to the next (batch ``b``).

    Attributes:
        pending: ``[b, k, m]`` samples of the ``k`` input signals (mixture, and siren stem with
            ``use_separation``) not yet in a whole frame, from sample ``frames * hop`` on.
        conv: per temporal convolution, its last ``(kernel - 1) * dilation`` input frames
            ``[b, channels, (kernel - 1) * dilation]`` (zeros at the start: the offline pad).
        gru: the GRU's hidden state ``[1, b, gru]`` (None without a GRU).
        frames: frames made so far.
        smooth: the PCEN front-end's running mean band powers ``[k * b, n_mels]`` (None before
            the first frame, or with the log front-end).
    """

    pending: torch.Tensor
    conv: list[torch.Tensor]
    gru: torch.Tensor | None
    frames: int = 0
    smooth: torch.Tensor | None = None

    def clone(self) -> SDEState:
        """A deep copy: continuing from it gives what continuing from ``self`` would."""
        return copy.deepcopy(self)


class CausalBlock(nn.Module):
    """Residual causal dilated convolution over frames, ``[b, d, t] -> [b, d, t]``: its output
    at frame ``t`` sees input frames ``t - (kernel - 1) * dilation .. t``."""

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.kernel = kernel
        self.dilation = dilation
        self.context = (kernel - 1) * dilation
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation)
        self.norm = nn.LayerNorm(channels)
        self.act = nn.LeakyReLU(0.1)
        self.drop = nn.Dropout(dropout)

    def _conv(self, padded: torch.Tensor) -> torch.Tensor:
        """The dilated convolution as one contraction over its ``kernel`` taps: torch's CPU
        kernel for a dilated convolution is a slow path (about 0.5 ms per streamed frame, most
        of the network's time); this is the same sum, ``[b, d, t + context] -> [b, d, t]``."""
        t = padded.shape[-1] - self.context
        d = self.dilation
        taps = torch.stack([padded[..., j * d : j * d + t] for j in range(self.kernel)], dim=2)
        out = torch.einsum("oik,bikt->bot", self.conv.weight, taps)
        return out + self.conv.bias[:, None]

    def _branch(self, padded: torch.Tensor) -> torch.Tensor:
        h = self.norm(self._conv(padded).transpose(1, 2)).transpose(1, 2)
        return self.drop(self.act(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self._branch(F.pad(x, (self.context, 0)))

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [b, d, t]`` new frames with ``state`` the previous ``context`` input frames ->
        (output ``[b, d, t]``, new state)."""
        full = torch.cat([state, x], dim=-1)
        return x + self._branch(full), full[..., full.shape[-1] - self.context :]


class SDEModel(nn.Module):
    """Siren probability per frame from waveforms.

    ``forward(mixture [b, n], siren [b, n] | None) -> logits [b, t]`` with
    ``t = config.frames(n)``; ``siren`` is required with ``use_separation`` and ignored
    otherwise. Probabilities are ``logits.sigmoid()``.
    """

    def __init__(self, config: SDEConfig) -> None:
        super().__init__()
        self.config = cfg = config
        # persistent=False: derived from the config, never part of a checkpoint
        self.register_buffer("window", torch.hann_window(cfg.n_fft, periodic=True), False)
        self.register_buffer("mel", torch.from_numpy(mel_filterbank(cfg)), False)
        # per-feature affine (learned) on the fixed log scaling, as the separator's input_scale
        self.input_scale = nn.Parameter(torch.ones(cfg.inputs, 1))
        self.input_bias = nn.Parameter(torch.zeros(cfg.inputs, 1))
        self.proj = nn.Conv1d(cfg.inputs, cfg.channels, 1)
        self.blocks = nn.ModuleList(
            CausalBlock(cfg.channels, cfg.kernel, d, cfg.dropout) for d in cfg.dilations
        )
        self.gru = nn.GRU(cfg.channels, cfg.gru, batch_first=True) if cfg.gru else None
        self.head = nn.Linear(cfg.gru or cfg.channels, 1)

    # ---- features ------------------------------------------------------------------------
    def frame(self, wave: torch.Tensor) -> torch.Tensor:
        """``[..., n]`` samples -> ``[..., t, n_fft]`` whole frames (``t`` may be 0)."""
        cfg = self.config
        if wave.shape[-1] < cfg.n_fft:
            return wave.new_zeros(*wave.shape[:-1], 0, cfg.n_fft)
        return wave.unfold(-1, cfg.n_fft, cfg.hop)

    def band_power(self, wave: torch.Tensor) -> torch.Tensor:
        """``[b, n]`` samples -> ``[b, t, n_mels]`` mel-band powers (mean power per bin)."""
        frames = self.frame(wave) * self.window
        # mean power per bin (Parseval-normalised), so the level does not depend on n_fft
        power = torch.fft.rfft(frames).abs().pow(2) / (self.config.n_fft * self.window.pow(2).sum())
        return power @ self.mel

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """``[b, n]`` samples -> ``[b, n_mels, t]`` scaled log10 mel-band powers."""
        bands = self.band_power(wave)
        return ((torch.log10(bands + LOG_FLOOR) + LOG_SHIFT) / LOG_SCALE).transpose(1, 2)

    def pcen(
        self, wave: torch.Tensor, smooth: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``[b, n]`` samples and the running mean band powers ``[b, n_mels]`` before them
        (None: start from the first frame's) -> (``[b, n_mels, t]`` PCEN features, the running
        mean after them). Per band: ``M[t] = (1 - a) M[t-1] + a E[t]`` with ``a`` from
        ``pcen_seconds``, then ``(E / (eps + M)^0.98 + 2)^0.5 - 2^0.5`` (Wang et al. 2017's
        constants)."""
        bands = self.band_power(wave)  # [b, t, n_mels]
        cfg = self.config
        a = 1.0 - float(np.exp(-cfg.hop / (cfg.sample_rate * cfg.pcen_seconds)))
        means = []
        for t in range(bands.shape[1]):  # a first-order recursion: one frame at a time
            e = bands[:, t]
            smooth = e if smooth is None else (1 - a) * smooth + a * e
            means.append(smooth)
        if not means:
            return bands.new_zeros(bands.shape[0], cfg.n_mels, 0), smooth
        m = torch.stack(means, dim=1)
        gain = bands / (LOG_FLOOR + m).pow(0.98)
        return ((gain + 2.0).sqrt() - 2.0**0.5).transpose(1, 2), smooth

    def bands_of(
        self, wave: torch.Tensor, smooth: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The front-end's features ``[b, n_mels, t]`` of ``[b, n]`` samples (and the PCEN
        running mean after them; ``smooth`` passes through the log front-end untouched)."""
        if self.config.frontend == "pcen":
            return self.pcen(wave, smooth)
        return self.log_mel(wave), smooth

    def features(
        self,
        mixture: torch.Tensor,
        siren: torch.Tensor | None,
        smooth: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mixture (and siren stem) ``[b, n]`` -> (network input ``[b, inputs, t]``, the PCEN
        running mean after them ``[k * b, n_mels]``)."""
        if not self.config.use_separation:
            bands, smooth = self.bands_of(mixture, smooth)
            return bands * self.input_scale + self.input_bias, smooth
        if siren is None or siren.shape != mixture.shape:
            raise ValueError("use_separation needs a siren stem shaped like the mixture")
        # both signals through one transform (half the operator calls per streamed frame)
        b = mixture.shape[0]
        bands, smooth = self.bands_of(torch.cat([mixture, siren], dim=0), smooth)
        feats = torch.cat([bands[:b], bands[b:]], dim=1)
        return feats * self.input_scale + self.input_bias, smooth

    # ---- network -------------------------------------------------------------------------
    def _head(self, h: torch.Tensor, hidden: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """Last conv features ``[b, d, t]`` -> (logits ``[b, t]``, GRU state)."""
        seq = h.transpose(1, 2)
        if self.gru is not None:
            seq, hidden = self.gru(seq, hidden)
        return self.head(seq)[..., 0], hidden

    def forward(self, mixture: torch.Tensor, siren: torch.Tensor | None = None) -> torch.Tensor:
        """Whole signals ``[b, n]`` -> frame logits ``[b, t]``."""
        h = self.proj(self.features(mixture, siren)[0])
        for block in self.blocks:
            h = block(h)
        return self._head(h, None)[0]

    # ---- streaming -----------------------------------------------------------------------
    def init_state(self, batch: int = 1) -> SDEState:
        """A fresh state for ``batch`` independent streams."""
        cfg = self.config
        dev = self.proj.weight.device
        signals = 2 if cfg.use_separation else 1
        return SDEState(
            pending=torch.zeros(batch, signals, 0, device=dev),
            conv=[torch.zeros(batch, cfg.channels, b.context, device=dev) for b in self.blocks],
            gru=torch.zeros(1, batch, cfg.gru, device=dev) if self.gru is not None else None,
        )

    @torch.inference_mode()
    def step(
        self, mixture: torch.Tensor, siren: torch.Tensor | None, state: SDEState
    ) -> tuple[torch.Tensor, SDEState]:
        """Feed ``[b, m]`` new samples of the mixture (and siren stem); return the logits
        ``[b, k]`` of the ``k`` frames they completed and the new state (also updated in
        place: :meth:`SDEState.clone` it first to keep it)."""
        cfg = self.config
        new = [mixture] + ([siren] if cfg.use_separation else [])
        if cfg.use_separation and (siren is None or siren.shape != mixture.shape):
            raise ValueError("use_separation needs a siren stem shaped like the mixture")
        buf = torch.cat([state.pending, torch.stack(new, 1).to(state.pending)], dim=-1)
        k = cfg.frames(buf.shape[-1])
        state.pending = buf[..., k * cfg.hop :]
        if k == 0:
            return buf.new_zeros(buf.shape[0], 0), state
        used = buf[..., : (k - 1) * cfg.hop + cfg.n_fft]
        feats, state.smooth = self.features(
            used[:, 0], used[:, 1] if cfg.use_separation else None, state.smooth
        )
        h = self.proj(feats)
        for i, block in enumerate(self.blocks):
            h, state.conv[i] = block.step(h, state.conv[i])
        logits, state.gru = self._head(h, state.gru)
        state.frames += k
        return logits, state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
