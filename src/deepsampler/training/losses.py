"""Losses, named for what they compare. Stems are ``[b, s, c, samples]``.

``multisrc_*``: the estimate and reference hold all sources; the loss averages over them.
"""

from __future__ import annotations

import torch


def multisrc_l1_waveform(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean absolute sample difference over all sources, channels and samples."""
    return (estimate - reference).abs().mean()


def multisrc_multires_stft(
    estimate: torch.Tensor,
    reference: torch.Tensor,
    resolutions: tuple[int, ...] = (2048, 1024, 512, 256),
) -> torch.Tensor:
    """Multi-resolution STFT loss: L1 of log magnitudes plus spectral convergence, averaged over
    resolutions (hop = n_fft / 4, Hann window)."""
    est = estimate.reshape(-1, estimate.shape[-1])
    ref = reference.reshape(-1, reference.shape[-1])
    total = estimate.new_zeros(())
    for n_fft in resolutions:
        window = torch.hann_window(n_fft, device=est.device, dtype=est.dtype)
        e = torch.stft(est, n_fft, n_fft // 4, window=window, return_complex=True).abs()
        r = torch.stft(ref, n_fft, n_fft // 4, window=window, return_complex=True).abs()
        convergence = torch.linalg.norm(r - e) / (torch.linalg.norm(r) + 1e-7)
        log_mag = (torch.log(e + 1e-5) - torch.log(r + 1e-5)).abs().mean()
        total = total + convergence + log_mag
    return total / len(resolutions)
