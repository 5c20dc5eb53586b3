#!/usr/bin/env python
"""StemProver, measured honestly: does refining a separated stem bring it closer to the truth?

The benchmark lives in :mod:`deepsampler.evaluation.stemprover_bench` (the sets, the rows and
what each number is); this script is its command line.

    .venv/bin/python benchmarks/stemprover.py --model experiments/stemprover/stemprover.pt \
        --synthetic data/music4-2h/test --limit 6 --out experiments/bench/stemprover

Writes OUT/stemprover.json and OUT/stemprover.md and prints the table.
"""

from __future__ import annotations

import sys

from deepsampler.evaluation.stemprover_bench import main

if __name__ == "__main__":
    sys.exit(main())
