"""Phase-aware STFT features for StemProver (DESIGN.md section 6, step 1).

The representation keeps phase: a *compressed complex* spectrum ``|X|^p * exp(i angle X)`` split
into real and imaginary planes, which the iSTFT inverts exactly (periodic Hann, centred frames,
``hop <= n_fft / 2``; see :class:`deepsampler.audio.stft.STFT`). Magnitude compression
(``p = 0.3`` by default) evens out the dynamic range so that quiet high bands are not drowned by
loud low ones, while the phase — which carries transients and the alignment of partials — is
kept untouched.

:meth:`PhaseAwareSTFT.phase_features` adds two phase derivatives that are easier for a network to
read than raw phase, which wraps: the instantaneous-frequency deviation (time derivative) and the
group delay (frequency derivative), both in ``[-1, 1]`` and zero in silent bins.

Axis legend: ``b`` batch, ``c`` channels, ``f`` frequency bins (``n_fft // 2 + 1``), ``t`` frames
(``ceil(samples / hop) + 1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from deepsampler.audio.stft import STFT

# Added to |X|^2 before the fractional power: keeps |X|^(p-1) finite (and its gradient finite) at
# X = 0. Its effect on the round trip is an absolute spectral error below sqrt(_EPS) = 1e-6 per
# bin, far under the 1e-5 that float32 audio resolves anyway.
_EPS = 1e-12


@dataclass(frozen=True)
class FeatureConfig:
    """STFT geometry and magnitude compression of the phase-aware features.

    Args:
        n_fft: window and FFT size in samples (``n_fft // 2 + 1`` frequency bins).
        hop: hop size in samples; ``hop <= n_fft / 2`` so that the iSTFT is exact.
        compress: magnitude exponent ``p`` in ``(0, 1]``; 1 gives the plain complex STFT.
    """

    n_fft: int = 1024
    hop: int = 256
    compress: float = 0.3

    def __post_init__(self) -> None:
        if not isinstance(self.n_fft, int) or self.n_fft < 2:
            raise ValueError(f"n_fft must be an integer >= 2 samples, got {self.n_fft!r}")
        if not isinstance(self.hop, int) or not 1 <= self.hop <= self.n_fft // 2:
            raise ValueError(
                f"hop must be an integer in [1, n_fft/2] = [1, {self.n_fft // 2}] so the iSTFT "
                f"is exact, got {self.hop!r}; lower hop or raise n_fft"
            )
        if not (isinstance(self.compress, (int, float)) and 0 < self.compress <= 1):
            raise ValueError(
                f"compress must be in (0, 1] (1 = no compression), got {self.compress!r}"
            )

    @property
    def overlap(self) -> float:
        """Fraction of each frame shared with the next one, ``1 - hop / n_fft`` (>= 0.5)."""
        return 1.0 - self.hop / self.n_fft

    @property
    def freq_bins(self) -> int:
        return self.n_fft // 2 + 1

    @classmethod
    def from_overlap(cls, n_fft: int, overlap: float, compress: float = 0.3) -> FeatureConfig:
        """Config with ``hop = round(n_fft * (1 - overlap))``; ``overlap`` in ``[0.5, 1)``."""
        if not 0.5 <= overlap < 1:
            raise ValueError(
                f"overlap must be in [0.5, 1) so the iSTFT is exact, got {overlap!r} "
                "(0.75 is a common choice)"
            )
        hop = max(1, round(n_fft * (1.0 - overlap)))
        return cls(n_fft=n_fft, hop=hop, compress=compress)


class PhaseAwareSTFT(nn.Module):
    """Compressed complex STFT features of ``[b, c, samples]`` waveforms and their exact inverse.

    Channel ``c`` becomes planes ``2c`` (real part) and ``2c + 1`` (imaginary part) of the
    compressed spectrum ``|X|^p * exp(i angle X)``. Values are dimensionless (the STFT of audio
    in ``[-1, 1]`` raised to ``p``).
    """

    def __init__(self, config: FeatureConfig | None = None) -> None:
        super().__init__()
        self.config = config or FeatureConfig()
        self.stft = STFT(self.config.n_fft, self.config.hop)

    @property
    def freq_bins(self) -> int:
        return self.config.freq_bins

    def frames(self, samples: int) -> int:
        """Number of frames for a waveform of ``samples`` samples."""
        return self.stft.frames(samples)

    # ----- helpers ------------------------------------------------------------------------
    @staticmethod
    def _check_wave(wave: torch.Tensor) -> None:
        if wave.dim() != 3 or not wave.is_floating_point():
            raise ValueError(
                f"expected a float waveform [batch, channels, samples], got "
                f"{tuple(wave.shape)} {wave.dtype}; add batch/channel axes with wave[None, None]"
            )

    def _spectrum(self, wave: torch.Tensor) -> torch.Tensor:
        self._check_wave(wave)
        return self.stft(wave)  # [b, c, f, t] complex

    def _compress(self, spec: torch.Tensor) -> torch.Tensor:
        """``X -> X * (|X|^2 + eps)^((p - 1) / 2)``, i.e. ``|X|^p e^{i angle X}`` for ``|X|^2 >>
        eps``; written through ``|X|^2`` (not ``|X|`` or ``angle``) so the gradient is finite
        at 0."""
        p = self.config.compress
        if p == 1:
            return spec
        power = spec.real.square() + spec.imag.square()
        return spec * (power + _EPS).pow((p - 1) / 2)

    # ----- features ---------------------------------------------------------------------------
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Waveform ``[b, c, samples]`` float -> features ``[b, 2c, f, t]`` (same dtype).

        Planes ``2c, 2c + 1`` hold the real and imaginary parts of channel ``c``'s compressed
        spectrum.
        """
        y = self._compress(self._spectrum(wave))
        b, c, f, t = y.shape
        return torch.stack([y.real, y.imag], dim=2).reshape(b, 2 * c, f, t)

    def inverse(self, feats: torch.Tensor, length: int) -> torch.Tensor:
        """Features ``[b, 2c, f, t]`` -> waveform ``[b, c, length]``.

        Undoes the compression (``|Y|^(1/p)``, phase kept) and applies the iSTFT; for features
        that came from :meth:`forward` the waveform is recovered to float rounding.
        """
        if feats.dim() != 4 or feats.shape[1] % 2 or feats.shape[2] != self.freq_bins:
            raise ValueError(
                f"expected features [batch, 2*channels, {self.freq_bins}, frames], got "
                f"{tuple(feats.shape)}"
            )
        b, c2, f, t = feats.shape
        planes = feats.reshape(b, c2 // 2, 2, f, t)
        y = torch.complex(planes[:, :, 0], planes[:, :, 1])
        p = self.config.compress
        if p != 1:
            # |Y|^(1/p) e^{i angle Y} = Y * |Y|^(1/p - 1), written as power * (power + eps)^(a-1)
            # (a = (1/p - 1) / 2) so that the slope stays finite at Y = 0 even where a < 1
            # (p > 1/3); neither eps matters above |X| ~ 1e-6 (the forward's is not undone)
            power = planes[:, :, 0].square() + planes[:, :, 1].square()
            y = y * power * (power + _EPS).pow((1 / p - 1) / 2 - 1)
        return self.stft.inverse(y, length)

    def magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        """Compressed magnitude ``|X|^p`` of ``[b, c, samples]`` -> ``[b, c, f, t]``."""
        spec = self._spectrum(wave)
        power = spec.real.square() + spec.imag.square()
        # power * (power + eps)^(p/2 - 1): |X|^p above the eps floor, exactly 0 in silence, and
        # a finite gradient everywhere (|X|^p itself has an infinite slope at 0)
        return power * (power + _EPS).pow(self.config.compress / 2 - 1)

    def phase_features(self, wave: torch.Tensor) -> torch.Tensor:
        """Phase derivatives of ``[b, c, samples]`` -> ``[b, 2c, f, t]``, each in ``[-1, 1]``.

        Plane ``2c``: instantaneous-frequency deviation of channel ``c``: the phase advance of
        each bin from frame ``t - 1`` to ``t``, minus the advance ``2 pi k hop / n_fft`` of a
        sinusoid at the bin's centre frequency, wrapped to ``(-pi, pi]`` and divided by ``pi``.
        A stationary sinusoid at ``k_0 + d`` bins reads ``2 d hop / n_fft`` (wrapped) in its
        bins; frame 0 reads 0.

        Plane ``2c + 1``: group delay: the phase difference between bin ``k`` and ``k - 1``
        (phase referred to the frame centre), wrapped and divided by ``pi``. An impulse ``m``
        samples after the frame centre reads ``-2 m / n_fft``; bin 0 reads 0.

        Both are multiplied by the compressed magnitude normalised by its maximum over each
        batch item (the product of the two bins' magnitudes for the differences, square-rooted),
        so silent bins read 0. Computed from complex products, never from ``angle`` itself, so
        there are no phase unwrapping jumps and the gradient is finite everywhere.
        """
        spec = self._spectrum(wave)  # [b, c, f, t]
        n_fft, hop = self.config.n_fft, self.config.hop
        f = spec.shape[-2]
        k = torch.arange(f, device=spec.device, dtype=spec.real.dtype)
        # refer each frame's phase to its centre (the FFT's origin is the frame start): a
        # centred impulse then has zero group delay
        spec = spec * (1 - 2 * (k % 2))[:, None]

        # time difference of phase, less the bin's expected advance
        advance = torch.polar(torch.ones_like(k), -2 * math.pi * k * hop / n_fft)[:, None]
        dt = spec[..., 1:] * spec[..., :-1].conj() * advance
        inst = torch.nn.functional.pad(self._weighted_angle(dt), (1, 0))
        # frequency difference of phase
        df = spec[..., 1:, :] * spec[..., :-1, :].conj()
        delay = torch.nn.functional.pad(self._weighted_angle(df), (0, 0, 1, 0))

        b, c, f, t = inst.shape
        return torch.stack([inst, delay], dim=2).reshape(b, 2 * c, f, t)

    def _weighted_angle(self, z: torch.Tensor) -> torch.Tensor:
        """``angle(z) / pi`` times a magnitude weight in ``[0, 1]``; ``z`` is a product of two
        bins, so ``|z|^(p/2)`` is their geometric-mean compressed magnitude."""
        power = z.real.square() + z.imag.square()
        live = power > 0
        # atan2's gradient is 0/0 at the origin: feed it a safe value there and mask the result
        safe = torch.where(live, z, torch.ones_like(z))
        angle = torch.where(live, torch.atan2(safe.imag, safe.real), torch.zeros_like(power))
        p = self.config.compress
        # as in magnitude(): 0 at 0 with a finite slope (eps, not eps^2: the slope of the power
        # would overflow float32 at 0)
        weight = power * (power + _EPS).pow(p / 4 - 1)
        # the floor keeps peak^2 (in the gradient of the division) from underflowing in silence
        peak = weight.flatten(1).amax(dim=1).clamp_min(_EPS)
        weight = weight / peak.reshape(-1, *([1] * (weight.dim() - 1)))
        return angle / math.pi * weight
