"""Separation metrics. Stems are ``[s, c, samples]`` (or ``[c, samples]`` for one source).

- :func:`museval_scores`: BSS Eval v4 SDR/ISR/SIR/SAR per source, median over 1-second frames
  (NaN frames, where a reference or estimate is silent, ignored), as museval reports them.
- :func:`si_sdr`: scale-invariant SDR of each source (channels concatenated).
- :func:`usdr`: whole-track SDR, ``10 log10(|s|^2 / |s - s_hat|^2)`` (the MDX challenge's).
- :func:`pesq_wb`, :func:`stoi`: speech quality and intelligibility (16 kHz mono).
- :func:`band_phase_coherence`, :func:`band_magnitude_error`: per frequency band, for StemProver.
"""

from __future__ import annotations

import numpy as np
import soxr

from deepsampler.audio.bands import log_band_edges
from deepsampler.evaluation.bss_eval import bss_eval_v4
from deepsampler.evaluation.spectra import inner_stft

EPS = 1e-10


def _as3d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[None] if x.ndim == 2 else x


def museval_scores(
    references: np.ndarray, estimates: np.ndarray, sample_rate: int
) -> dict[str, np.ndarray]:
    """Per-source ``{"sdr", "isr", "sir", "sar"}`` (dB): median over 1 s frames of BSS Eval
    v4, ignoring undefined (silent) frames; NaN if every frame is undefined."""
    frames = bss_eval_v4(_as3d(references), _as3d(estimates), window=sample_rate)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN sources stay NaN
            return {k: np.nanmedian(v, axis=1) for k, v in frames.items()}


def si_sdr(references: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """Scale-invariant SDR (dB) per source; each source's channels are concatenated."""
    r = _as3d(references).reshape(_as3d(references).shape[0], -1)
    e = _as3d(estimates).reshape(r.shape)
    r = r - r.mean(axis=1, keepdims=True)
    e = e - e.mean(axis=1, keepdims=True)
    alpha = (e * r).sum(1, keepdims=True) / ((r * r).sum(1, keepdims=True) + EPS)
    target = alpha * r
    score = 10 * np.log10(((target**2).sum(1) + EPS) / (((e - target) ** 2).sum(1) + EPS))
    return np.where((r**2).sum(1) > 0, score, np.nan)  # undefined for a silent reference


def usdr(references: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """Whole-track ("utterance") SDR (dB) per source, no projection, no scaling."""
    r, e = _as3d(references), _as3d(estimates)
    num = (r**2).sum(axis=(1, 2))
    den = ((r - e) ** 2).sum(axis=(1, 2))
    score = 10 * np.log10((num + EPS) / (den + EPS))
    return np.where(num > 0, score, np.nan)  # undefined for a silent reference, as museval


def _speech_mono16k(x: np.ndarray, sample_rate: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    x = x.mean(axis=0) if x.ndim == 2 else x
    return soxr.resample(x, sample_rate, 16000) if sample_rate != 16000 else x


def pesq_wb(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Wide-band PESQ (MOS-LQO, 1.0-4.6) of one speech signal ``[c, n]`` or ``[n]``; NaN where
    PESQ is undefined (no utterance detected, too short)."""
    from pesq import PesqError, pesq

    ref, est = _speech_mono16k(reference, sample_rate), _speech_mono16k(estimate, sample_rate)
    score = pesq(16000, ref, est, "wb", on_error=PesqError.RETURN_VALUES)
    return float(score) if score >= 0 else float("nan")  # negative values are error codes


def stoi(
    reference: np.ndarray, estimate: np.ndarray, sample_rate: int, extended: bool = False
) -> float:
    """STOI (or ESTOI with ``extended``) in [0, 1] of one speech signal."""
    from pystoi import stoi as _stoi

    ref, est = _speech_mono16k(reference, sample_rate), _speech_mono16k(estimate, sample_rate)
    return float(_stoi(ref, est, 16000, extended=extended))


def band_edges(n_fft: int, sample_rate: int, bands: int = 8) -> np.ndarray:
    """Bin indices of ``bands`` log-spaced bands from 50 Hz to Nyquist (``bands + 1`` edges,
    none empty)."""
    return log_band_edges(n_fft, sample_rate, bands, 50.0)


def _band_spectra(
    reference: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int,
    n_fft: int,
    hop: int,
    bands: int,
) -> tuple[np.ndarray, np.ndarray, list[slice]]:
    """Spectra ``[..., f, t]`` of both signals (periodic Hann, frames wholly inside the signal:
    :func:`~deepsampler.evaluation.spectra.inner_stft`) and the bin slices of the bands."""
    R = inner_stft(reference, n_fft, hop)
    E = inner_stft(estimate, n_fft, hop)
    edges = band_edges(n_fft, sample_rate, bands)
    return R, E, [slice(edges[b], edges[b + 1]) for b in range(bands)]


def band_phase_coherence(
    reference: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int,
    n_fft: int = 2048,
    hop: int = 512,
    bands: int = 8,
) -> np.ndarray:
    """Per band: magnitude-weighted mean of ``cos(phase_est - phase_ref)`` over bins and frames,
    in [-1, 1] (1: phases agree). ``reference, estimate: [c, n]`` -> ``[bands]``."""
    R, E, slices = _band_spectra(reference, estimate, sample_rate, n_fft, hop, bands)
    cross, weight = E * np.conj(R), np.abs(R) * np.abs(E)
    out = np.empty(bands)
    for b, sl in enumerate(slices):
        w = weight[..., sl, :].sum()
        out[b] = np.real(cross[..., sl, :]).sum() / w if w > 0 else np.nan
    return out


def band_magnitude_error(
    reference: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int,
    n_fft: int = 2048,
    hop: int = 512,
    bands: int = 8,
) -> np.ndarray:
    """Per band: mean absolute log-magnitude difference (dB) over bins and frames. ``[bands]``."""
    R, E, slices = _band_spectra(reference, estimate, sample_rate, n_fft, hop, bands)
    diff = np.abs(20 * np.log10(np.abs(E) + 1e-6) - 20 * np.log10(np.abs(R) + 1e-6))
    return np.array([diff[..., sl, :].mean() for sl in slices])
