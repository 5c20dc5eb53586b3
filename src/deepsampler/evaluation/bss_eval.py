"""BSS Eval v4 (images) as museval computes it, vectorised.

museval's ``evaluate(..., mode="v4")`` fits one set of time-invariant distortion filters
(512 taps, every source and channel) on the whole track, then scores 1-second frames: each frame
of the references is projected through those filters and split into target, spatial distortion,
interference and artifacts. This module does the same arithmetic with batched FFTs instead of
Python loops over sources, channels and frames; ``tests/evaluation`` checks it against museval.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy.linalg import toeplitz

FILTER_LEN = 512


def _next_pow2(n: int) -> int:
    return int(2 ** np.ceil(np.log2(n)))


def _correlations(refs: np.ndarray, est: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
    """Gram matrix ``G [S*C*L, S*C*L]`` of the delayed references and their cross-correlation
    ``D [S, S*C*L, C]`` with every estimate. ``refs, est: [S, C, N]``."""
    S, C, N = refs.shape
    n_fft = _next_pow2(N + L - 1)
    rf = scipy.fft.fft(refs, n=n_fft, axis=-1).reshape(S * C, n_fft)
    ef = scipy.fft.fft(est, n=n_fft, axis=-1)  # [S, C, n_fft]
    # auto/cross-correlations of every pair of reference channels, lags -(L-1)..(L-1)
    xc = np.real(scipy.fft.ifft(rf[None, :] * np.conj(rf[:, None]), axis=-1))  # [SC, SC, n]
    G = np.empty((S * C, S * C, L, L))
    for a in range(S * C):
        for b in range(a, S * C):
            ssf = xc[a, b]  # sf[b] * conj(sf[a])
            block = toeplitz(np.hstack((ssf[0], ssf[-1:-L:-1])), r=ssf[:L])
            G[b, a] = block
            G[a, b] = block.T
    G = G.transpose(0, 2, 1, 3).reshape(S * C * L, S * C * L)
    # D[j_est][(src, ch, lag), c] = correlation of reference (src, ch) with estimate j_est's c
    cc = np.real(scipy.fft.ifft(rf[None, :, None] * np.conj(ef[:, None]), axis=-1))
    lags = np.concatenate([cc[..., :1], cc[..., -1:-L:-1]], axis=-1)  # [S, SC, C, L]
    D = lags.transpose(0, 1, 3, 2).reshape(S, S * C * L, C)
    return G, D


def _solve(G: np.ndarray, D: np.ndarray) -> np.ndarray:
    eps = np.finfo(float).eps
    try:
        return np.linalg.solve(G + eps * np.eye(G.shape[0]), D)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(G, D, rcond=None)[0]


def _filter_spectra(filt: np.ndarray, n_fft: int) -> np.ndarray:
    return scipy.fft.rfft(filt, n=n_fft, axis=-2)


def bss_eval_v4(
    references: np.ndarray, estimates: np.ndarray, window: int, hop: int | None = None
) -> dict[str, np.ndarray]:
    """Framewise SDR, ISR, SIR, SAR (dB) of ``estimates`` against ``references``.

    Args:
        references, estimates: ``[s, c, samples]`` (same shape; pad or cut beforehand).
        window: frame length in samples (museval: 1 s); hop defaults to the window.

    Returns ``{"sdr", "isr", "sir", "sar"}`` each ``[s, frames]``; a frame where any reference or
    any estimate is silent is NaN, as in museval.
    """
    refs = np.asarray(references, dtype=np.float64)
    est = np.asarray(estimates, dtype=np.float64)
    if refs.shape != est.shape or refs.ndim != 3:
        raise ValueError(
            f"need two [s, c, samples] arrays of one shape, got {refs.shape}, {est.shape}"
        )
    S, C, N = refs.shape
    hop = hop or window
    L = FILTER_LEN
    G, D = _correlations(refs, est, L)
    # interference filters: every estimate on all references; spatial: on its own reference
    C_all = _solve(G, np.concatenate(list(D), axis=1)).reshape(S * C * L, S, C)
    C_all = C_all.transpose(1, 0, 2).reshape(S, S, C, L, C)
    C_own = np.empty((S, C, L, C))
    for j in range(S):
        idx = slice(j * C * L, (j + 1) * C * L)
        C_own[j] = _solve(G[idx, idx], D[j][idx]).reshape(C, L, C)
    frames = 1 if window >= N else int(np.floor((N - window + hop) / hop))
    out = {k: np.full((S, frames), np.nan) for k in ("sdr", "isr", "sir", "sar")}
    spectra: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for t in range(frames):
        win = slice(t * hop, min(t * hop + window, N))
        r, e = refs[..., win], est[..., win]
        if not ((np.abs(r).sum(axis=(1, 2)) > 0).all() and (np.abs(e).sum(axis=(1, 2)) > 0).all()):
            continue  # museval: a silent reference or estimate leaves the frame undefined
        n = r.shape[-1]
        m = n + L - 1
        n_fft = scipy.fft.next_fast_len(m)
        if n_fft not in spectra:  # the filters' spectra, once per frame length
            spectra[n_fft] = (_filter_spectra(C_all, n_fft), _filter_spectra(C_own, n_fft))
        f_all, f_own = spectra[n_fft]
        rf = scipy.fft.rfft(r, n=n_fft, axis=-1)  # [S, C, F]
        # every estimate's projection on all references, and on its own reference: [S, C, m]
        p_all = scipy.fft.irfft(np.einsum("kif,jkifo->jof", rf, f_all), n=n_fft)[..., :m]
        p_own = scipy.fft.irfft(np.einsum("jif,jifo->jof", rf, f_own), n=n_fft)[..., :m]
        s_true = np.zeros((S, C, m))
        s_true[..., :n] = r
        e_spat = p_own - s_true
        e_interf = p_all - p_own
        e_artif = -p_all
        e_artif[..., :n] += e
        energy = lambda x: np.sum(x**2, axis=(1, 2))  # noqa: E731
        out["sdr"][:, t] = _db(energy(s_true), energy(e_spat + e_interf + e_artif))
        out["isr"][:, t] = _db(energy(s_true), energy(e_spat))
        out["sir"][:, t] = _db(energy(s_true + e_spat), energy(e_interf))
        out["sar"][:, t] = _db(energy(s_true + e_spat + e_interf), energy(e_artif))
    return out


def _db(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(den == 0, np.inf, 10 * np.log10(num / np.where(den == 0, 1, den)))
