"""Evaluation: separation metrics (BSS Eval v4 as museval computes it, SI-SDR, uSDR, PESQ, STOI,
per-band phase coherence and magnitude error; their spectra through ``audio.stft``:
``spectra``), ``deepsampler evaluate`` (``evaluate``, ``plots``) and reading its summaries back
(``summaries``, for ``notebooks/analysis.ipynb``), and the benchmarks behind ``benchmarks/``'s
scripts (``event_bench``, ``speech_bench``, ``stemprover_bench``)."""
