#!/usr/bin/env python
"""Speech enhancement against pretrained peers (speech-rt, DeepFilterNet3, RNNoise, noisereduce):
SI-SDR(i), PESQ-WB, STOI, WER, RTF and latency on two-source folders.

The benchmark lives in :mod:`deepsampler.evaluation.speech_bench` (what each number is, the
folders it reads); this script is its command line.

    .venv/bin/python benchmarks/speech_peers.py ../shared/eval/real-speech --json out.json
    .venv/bin/python benchmarks/speech_peers.py DIR --models speech-rt ckpt.pt --peers dfn3
"""

from __future__ import annotations

import sys

from deepsampler.evaluation.speech_bench import main

if __name__ == "__main__":
    sys.exit(main())
