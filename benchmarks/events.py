#!/usr/bin/env python
"""Siren event detection on long streams: event and segment F1, false alarms, alert delay, RTF.

The benchmark lives in :mod:`deepsampler.evaluation.event_bench` (what each number is, the
streams folder it reads); this script is its command line.

    .venv/bin/python benchmarks/events.py experiments/heldout-sirens --models siren-sde \\
        runs/siren-sde-mixture/best.pt --json benchmarks/results/events.json
"""

from __future__ import annotations

import sys

from deepsampler.evaluation.event_bench import main

if __name__ == "__main__":
    sys.exit(main())
