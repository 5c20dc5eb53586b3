"""Simulated separation artifacts: paired (degraded, clean) examples for StemProver's adapters.

One degradation per artifact type that StemProver detects and repairs (DESIGN.md section 6):

- ``"bleed"``: other sources leak into the stem, spectrally shaped (:func:`add_bleed`);
- ``"musical_noise"``: a jittered, thresholded ratio mask leaves isolated peaks and holes
  (:func:`perturb_mask`);
- ``"band_limit"``: the highs are missing above a cutoff (:func:`low_pass`);
- ``"phase_smear"``: high-band phases are scrambled, smearing transients (:func:`phase_jitter`).

Every function takes ``clean`` as ``[c, samples]`` (or ``[samples]``) float audio and, where
needed, ``others`` (the sum of the other sources, same shape), draws its parameters from an
explicit ``np.random.Generator`` and returns ``(degraded, params)``: ``degraded`` has the shape of
``clean``, dtype float32, finite values and no length change; ``params`` is a JSON-friendly dict
of what was drawn. Levels are in dB, frequencies in Hz, phases in radians.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from deepsampler.audio.stft import STFT
from deepsampler.stemprover.checks import check_wave

ARTIFACTS = ("bleed", "musical_noise", "band_limit", "phase_smear")

Params = dict[str, Any]
# a real gain as a function of frequency given as a fraction of Nyquist, [n] -> [n]
GainCurve = Callable[[np.ndarray], np.ndarray]

# zero-phase FFT filters are applied with this much zero padding on both sides, so the filter's
# (two-sided) ringing falls into the padding instead of wrapping round from the other end
_FILTER_PAD = 4096
_EPS = 1e-12


def _check_pair(clean: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    clean, others = check_wave("clean", clean), check_wave("others", others)
    if others.shape != clean.shape:
        raise ValueError(f"others shape {others.shape} must equal clean shape {clean.shape}")
    return clean, others


def _check_rate(sample_rate: int) -> None:
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate < 1:
        raise ValueError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")


def _check_range(name: str, bounds: Sequence[float], lo: float = -np.inf) -> tuple[float, float]:
    a, b = (float(v) for v in bounds)
    if not (np.isfinite(a) and np.isfinite(b) and lo <= a <= b):
        raise ValueError(
            f"{name} must be finite (low, high) with {lo} <= low <= high, got {bounds}"
        )
    return a, b


def _out(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Float32 numpy output with non-finite values (never expected) replaced by 0."""
    if isinstance(x, torch.Tensor):
        x = x.numpy()
    return np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def _stft(wave: np.ndarray, n_fft: int, hop: int) -> tuple[STFT, torch.Tensor]:
    """Complex ``[..., f, t]`` spectrogram (float64) and the transform that made it."""
    transform = STFT(n_fft, hop)
    return transform, transform(torch.from_numpy(np.asarray(wave, dtype=np.float64)))


def _zero_phase_filter(wave: np.ndarray, gain: GainCurve) -> np.ndarray:
    """Filter ``[..., samples]`` by a real (zero-phase) gain ``gain(f)`` given on ``[0, 1]``.

    ``gain`` is a callable of the frequency as a fraction of Nyquist, evaluated on the rfft grid
    of the zero-padded signal; returns float64 ``[..., samples]``.
    """
    n = wave.shape[-1]
    padded = np.zeros((*wave.shape[:-1], n + 2 * _FILTER_PAD))
    padded[..., _FILTER_PAD : _FILTER_PAD + n] = wave
    spec = np.fft.rfft(padded, axis=-1)
    freq = np.arange(spec.shape[-1]) * 2.0 / padded.shape[-1]  # bin k is at 2k/N of Nyquist
    spec *= gain(freq)
    return np.fft.irfft(spec, n=padded.shape[-1], axis=-1)[..., _FILTER_PAD : _FILTER_PAD + n]


def smooth_gain_curve(
    rng: np.random.Generator, anchors: int = 8, depth_db: float = 18.0
) -> GainCurve:
    """A random smooth gain curve over frequency (fraction of Nyquist in ``[0, 1]``) -> linear.

    Gains in dB are drawn uniformly in ``[-depth_db, 0]`` at ``anchors`` log-spaced frequencies
    from Nyquist/512 (about 43 Hz at 44.1 kHz) to Nyquist and interpolated linearly in
    log-frequency, like the broad spectral tilt and bumps of a separator's leakage.
    """
    where = np.log2(np.geomspace(1 / 512, 1.0, anchors))
    db = rng.uniform(-depth_db, 0.0, anchors)

    def gain(freq: np.ndarray) -> np.ndarray:
        logf = np.log2(np.maximum(freq, 1 / 512))
        return 10 ** (np.interp(logf, where, db) / 20)

    return gain


def add_bleed(
    clean: np.ndarray,
    others: np.ndarray,
    rng: np.random.Generator,
    level_db_range: tuple[float, float] = (-25.0, -10.0),
) -> tuple[np.ndarray, Params]:
    """Leak a spectrally shaped share of ``others`` into ``clean``: ``[c, samples]`` -> same.

    ``others`` is filtered by a random smooth gain curve (:func:`smooth_gain_curve`, zero-phase)
    and added at a level drawn from ``level_db_range``: ``10 log10(E[bleed] / E[clean])`` equals
    the drawn ``level_db`` exactly (energies summed over channels and samples). A silent
    ``clean`` takes ``others`` as the reference instead; silent ``others`` leave ``clean`` as is.

    Returns:
        ``(degraded, {"level_db", "reference"})`` with ``reference`` one of ``"clean"``,
        ``"others"``, ``"none"``.
    """
    clean, others = _check_pair(clean, others)
    lo, hi = _check_range("level_db_range", level_db_range)
    level_db = float(rng.uniform(lo, hi))
    shaped = _zero_phase_filter(others.astype(np.float64), smooth_gain_curve(rng))
    e_bleed = float(np.sum(shaped**2))
    e_clean = float(np.sum(clean.astype(np.float64) ** 2))
    e_others = float(np.sum(others.astype(np.float64) ** 2))
    reference = "clean" if e_clean > _EPS else "others" if e_others > _EPS else "none"
    if reference == "none" or e_bleed <= _EPS:
        return _out(clean), {"level_db": level_db, "reference": "none"}
    e_ref = e_clean if reference == "clean" else e_others
    scale = np.sqrt(e_ref / e_bleed * 10 ** (level_db / 10))
    return _out(clean + scale * shaped), {"level_db": level_db, "reference": reference}


def perturb_mask(
    clean: np.ndarray,
    others: np.ndarray,
    rng: np.random.Generator,
    jitter_range: tuple[float, float] = (0.3, 0.8),
    threshold_range: tuple[float, float] = (0.1, 0.4),
    peak_fraction_range: tuple[float, float] = (0.005, 0.03),
    n_fft: int = 2048,
    hop: int = 512,
) -> tuple[np.ndarray, Params]:
    """Musical noise as from a masking separator: ``[c, samples]`` -> same.

    The ideal ratio mask ``|C| / sqrt(|C|^2 + |O|^2)`` of ``clean`` in the mixture
    ``clean + others`` (STFT ``n_fft``/``hop``) is perturbed: multiplied per time-frequency bin
    by ``exp(N(0, jitter^2))``, values below ``threshold`` set to 0 (holes), a random
    ``peak_fraction`` of bins set to 1 (isolated peaks of leaked energy), then clipped to
    ``[0, 1]``, applied to the mixture STFT and inverted.

    Returns:
        ``(degraded, {"jitter", "threshold", "peak_fraction"})``.
    """
    clean, others = _check_pair(clean, others)
    jitter = float(rng.uniform(*_check_range("jitter_range", jitter_range, 0.0)))
    threshold = float(rng.uniform(*_check_range("threshold_range", threshold_range, 0.0)))
    peaks = float(rng.uniform(*_check_range("peak_fraction_range", peak_fraction_range, 0.0)))
    transform, spec_c = _stft(clean, n_fft, hop)
    _, spec_o = _stft(others, n_fft, hop)
    mag_c, mag_o = spec_c.abs().numpy(), spec_o.abs().numpy()
    power = mag_c**2 + mag_o**2
    # bins where both are silent carry no mixture energy; a mask of 1 there changes nothing
    mask = np.where(power > _EPS, mag_c / np.sqrt(np.maximum(power, _EPS)), 1.0)
    mask = mask * np.exp(jitter * rng.standard_normal(mask.shape))
    mask[mask < threshold] = 0.0
    mask[rng.random(mask.shape) < peaks] = 1.0
    mask = np.clip(mask, 0.0, 1.0)
    degraded = transform.inverse((spec_c + spec_o) * torch.from_numpy(mask), clean.shape[-1])
    return _out(degraded), {"jitter": jitter, "threshold": threshold, "peak_fraction": peaks}


def low_pass(
    clean: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    cutoff_range_hz: tuple[float, float] = (3000.0, 11000.0),
    order: int = 24,
) -> tuple[np.ndarray, Params]:
    """Band-limit ``clean`` (``[c, samples]`` -> same) above a random cutoff, zero-phase.

    The gain is a Butterworth magnitude ``1 / sqrt(1 + (f / cutoff)^(2 order))`` applied in the
    FFT domain with no phase change, so only the highs go missing: -3 dB at the cutoff, about
    -0.01 dB at 0.8x and below -80 dB at 1.5x for the default order. The cutoff range is capped
    at 0.9x Nyquist so that something is always removed.

    Returns:
        ``(degraded, {"cutoff_hz", "order"})``.
    """
    clean = check_wave("clean", clean)
    _check_rate(sample_rate)
    lo, hi = _check_range("cutoff_range_hz", cutoff_range_hz, 0.0)
    if lo <= 0 or order < 1:
        raise ValueError(f"need cutoffs > 0 Hz and order >= 1, got {cutoff_range_hz}, {order}")
    nyquist = sample_rate / 2
    hi = min(hi, 0.9 * nyquist)
    lo = min(lo, hi)
    cutoff = float(rng.uniform(lo, hi))
    ratio = cutoff / nyquist

    def gain(freq: np.ndarray) -> np.ndarray:
        return 1.0 / np.sqrt(1.0 + (freq / ratio) ** (2 * order))

    degraded = _zero_phase_filter(clean.astype(np.float64), gain)
    return _out(degraded), {"cutoff_hz": cutoff, "order": int(order)}


def phase_jitter(
    clean: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    edge_range_hz: tuple[float, float] = (1500.0, 6000.0),
    max_std_range: tuple[float, float] = (1.0, 2.0),
    n_fft: int = 2048,
    hop: int = 512,
    consistency_iters: int = 1,
) -> tuple[np.ndarray, Params]:
    """Smear transients by perturbing high-band STFT phases: ``[c, samples]`` -> same.

    Each frequency bin gets a random phase offset (the same in every frame and channel, so the
    stereo image is kept) with std ``max_std * clip(log2(f / edge), 0, 1)``: none below
    ``edge``, growing over an octave to ``max_std`` radians. Independent offsets across bins
    destroy the linear phase of a transient, spreading it over the analysis window.

    The perturbed spectrogram is inconsistent, so its inverse loses high-band energy (up to
    about 3 dB at ``max_std = 1.5``); ``consistency_iters`` Griffin-Lim steps (re-analyse, put
    back the original magnitudes, invert) bring the band energies back to within about 0.5 dB
    while keeping the smeared phases.

    Returns:
        ``(degraded, {"edge_hz", "max_std"})``.
    """
    clean = check_wave("clean", clean)
    _check_rate(sample_rate)
    edge = float(rng.uniform(*_check_range("edge_range_hz", edge_range_hz, 1e-3)))
    max_std = float(rng.uniform(*_check_range("max_std_range", max_std_range, 0.0)))
    transform, spec = _stft(clean, n_fft, hop)
    freq = np.arange(transform.freq_bins) * sample_rate / n_fft
    std = max_std * np.clip(np.log2(np.maximum(freq, _EPS) / edge), 0.0, 1.0)
    if consistency_iters < 0:
        raise ValueError(f"consistency_iters must be >= 0, got {consistency_iters}")
    offsets = np.exp(1j * std * rng.standard_normal(len(freq)))
    length = clean.shape[-1]
    degraded = transform.inverse(spec * torch.from_numpy(offsets)[:, None], length)
    magnitude = spec.abs()
    for _ in range(consistency_iters):
        again = transform(degraded)
        degraded = transform.inverse(magnitude * again / again.abs().clamp_min(_EPS), length)
    return _out(degraded), {"edge_hz": edge, "max_std": max_std}


def degrade(
    clean: np.ndarray,
    others: np.ndarray,
    sample_rate: int,
    artifact: str,
    rng: np.random.Generator,
    **kw: Any,
) -> tuple[np.ndarray, Params]:
    """Apply one artifact by name (one of :data:`ARTIFACTS`): ``[c, samples]`` -> same.

    ``kw`` goes to the artifact's function (e.g. ``level_db_range`` for ``"bleed"``).

    Returns:
        ``(degraded, params)`` as returned by that function.
    """
    if artifact == "bleed":
        return add_bleed(clean, others, rng, **kw)
    if artifact == "musical_noise":
        return perturb_mask(clean, others, rng, **kw)
    if artifact == "band_limit":
        return low_pass(clean, sample_rate, rng, **kw)
    if artifact == "phase_smear":
        return phase_jitter(clean, sample_rate, rng, **kw)
    raise ValueError(f"unknown artifact {artifact!r}; valid ones are {', '.join(ARTIFACTS)}")


def degrade_mixed(
    clean: np.ndarray,
    others: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    artifacts: Sequence[str] | None = None,
) -> tuple[np.ndarray, Params]:
    """Apply a random non-empty subset of ``artifacts`` (default all): ``[c, samples]`` -> same.

    Each candidate is kept with probability 1/2 (at least one always is) and they are applied in
    the order of :data:`ARTIFACTS`, bleed first, as a separator's leakage precedes the other
    damage.

    Returns:
        ``(degraded, {"artifacts": [names applied], name: params, ...})``.
    """
    pool = list(ARTIFACTS if artifacts is None else artifacts)
    unknown = [a for a in pool if a not in ARTIFACTS]
    if unknown or not pool:
        raise ValueError(
            f"artifacts must be a non-empty subset of {', '.join(ARTIFACTS)}, got {pool}"
        )
    keep = rng.random(len(pool)) < 0.5
    if not keep.any():
        keep[rng.integers(len(pool))] = True
    chosen = [a for a in ARTIFACTS if a in {p for p, k in zip(pool, keep, strict=True) if k}]
    degraded = clean
    params: Params = {"artifacts": chosen}
    for name in chosen:
        degraded, params[name] = degrade(degraded, others, sample_rate, name, rng)
    return _out(degraded), params
