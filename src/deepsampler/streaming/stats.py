"""Per-block compute timing of a real-time loop: percentiles and missed deadlines (xruns)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class HopStats:
    """Compute time of each processed block against its deadline (the block's duration).

    A block whose compute time exceeds its duration is a missed deadline: counted, never fatal.
    ``xruns`` also counts the over/underflows the audio driver reports.
    """

    sample_rate: int
    hop: int
    compute_ms: list[float] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    missed: int = 0
    xruns: int = 0

    def add(self, seconds: float, samples: int) -> bool:
        """Record one block; return True if it missed its deadline."""
        self.compute_ms.append(1000.0 * seconds)
        self.samples.append(samples)
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
        audio_s = sum(self.samples) / self.sample_rate
        return {
            "blocks": len(self.compute_ms),
            "hop_ms": 1000.0 * self.hop / self.sample_rate,
            "p50_ms": float(np.percentile(per_hop, 50)) if per_hop.size else 0.0,
            "p99_ms": float(np.percentile(per_hop, 99)) if per_hop.size else 0.0,
            "rtf": (sum(self.compute_ms) / 1000.0) / audio_s if audio_s else 0.0,
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
