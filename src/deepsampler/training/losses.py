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


def segment_si_sdr(
    estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """Scale-invariant SDR in dB over the last two dims (channels, samples) of ``[..., c, n]``
    tensors, both made zero-mean: ``10 log10(|a r|^2 / |a r - e|^2)`` with ``a`` the
    projection of the estimate ``e`` on the reference ``r`` (Le Roux et al., 2019)."""
    e = estimate.flatten(-2)
    r = reference.flatten(-2)
    e = e - e.mean(-1, keepdim=True)
    r = r - r.mean(-1, keepdim=True)
    scale = (e * r).sum(-1, keepdim=True) / (r.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * r
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / ((e - target).pow(2).sum(-1) + eps))


def multisrc_neg_si_sdr(
    estimate: torch.Tensor, reference: torch.Tensor, silence_db: float = -60.0
) -> torch.Tensor:
    """Minus the mean SI-SDR (dB) over the ``[b, s]`` stems whose reference is above
    ``silence_db`` dBFS RMS: the SI-SDR of a silent reference says nothing and its gradient
    would only push the estimate toward an arbitrary direction. 0 when every stem is silent."""
    loud = 10 * torch.log10(reference.pow(2).mean((-2, -1)) + 1e-12) >= silence_db
    if not loud.any():
        return estimate.new_zeros(())
    return -segment_si_sdr(estimate, reference)[loud].mean()
