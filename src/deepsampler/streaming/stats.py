"""Per-block compute timing of a real-time loop: percentiles and missed deadlines (xruns)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

KEEP = 200_000  # blocks kept for the percentiles (about 40 min of 11.6 ms hops)


@dataclass
class HopStats:
    """Compute time of each processed block against its deadline (the block's duration).

    A block whose compute time exceeds its duration is a missed deadline: counted, never fatal.
    ``xruns`` also counts the over/underflows the audio driver reports. Percentiles come from
    the last ``KEEP`` blocks, so a live session of any length uses bounded memory; the totals
    (blocks, real-time factor, missed deadlines) cover the whole run.
    """

    sample_rate: int
    hop: int
    compute_ms: deque = field(default_factory=lambda: deque(maxlen=KEEP))
    samples: deque = field(default_factory=lambda: deque(maxlen=KEEP))
    missed: int = 0
    xruns: int = 0
    blocks: int = 0
    total_compute_s: float = 0.0
    total_samples: int = 0

    def add(self, seconds: float, samples: int) -> bool:
        """Record one block; return True if it missed its deadline."""
        self.compute_ms.append(1000.0 * seconds)
        self.samples.append(samples)
        self.blocks += 1
        self.total_compute_s += seconds
        self.total_samples += samples
        late = samples > 0 and seconds > samples / self.sample_rate
        self.missed += int(late)
        return late

    def per_hop_ms(self) -> np.ndarray:
        """Compute time of each block scaled to one hop (ms)."""
        ms = np.asarray(self.compute_ms)
        n = np.maximum(np.asarray(self.samples, dtype=float), 1.0)
        return ms * self.hop / n

    def summary(self) -> dict[str, float]:
        per_hop = self.per_hop_ms()
        audio_s = self.total_samples / self.sample_rate
        return {
            "blocks": self.blocks,
            "hop_ms": 1000.0 * self.hop / self.sample_rate,
            "p50_ms": float(np.percentile(per_hop, 50)) if per_hop.size else 0.0,
            "p99_ms": float(np.percentile(per_hop, 99)) if per_hop.size else 0.0,
            "rtf": self.total_compute_s / audio_s if audio_s else 0.0,
            "missed_deadlines": self.missed,
            "xruns": self.xruns,
        }

    def line(self) -> str:
        s = self.summary()
        return (
            f"per-hop compute p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms "
            f"(hop {s['hop_ms']:.1f} ms) | real-time factor {s['rtf']:.3f} | "
            f"missed deadlines {s['missed_deadlines']} | xruns {s['xruns']}"
        )
