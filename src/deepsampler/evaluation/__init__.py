"""Evaluation: separation metrics (BSS Eval v4 as museval computes it, SI-SDR, uSDR, PESQ, STOI,
per-band phase coherence and magnitude error)."""
