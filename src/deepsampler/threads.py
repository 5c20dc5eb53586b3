"""How many CPU threads torch uses: set from ``--threads``, or chosen by the work and the load.

Measured with ``benchmarks/threads.py`` (music4-rt, 2 cores; README section Real time):

* streaming: one frame is too little work to split; on a busy machine (one other process
  spinning) the torch engine's RTF went from 0.70 on 1 thread to 3.13 on 2, and live against
  PulseAudio torch's default missed every deadline. Streaming runs on 1 thread by default.
* offline: on an idle machine 2 threads are faster (RTF 0.045 vs 0.070 for 5 s), on a busy one
  1 thread is (0.093 vs 0.179). Offline separation uses every core when the machine is idle
  (1-minute load average under half a core per core) and 1 thread otherwise.
"""

from __future__ import annotations

import os

from deepsampler.errors import DeepSamplerError

# the load average per core under which the machine counts as idle
IDLE_LOAD_PER_CORE = 0.5


def set_threads(threads: int) -> None:
    """Apply ``--threads`` (0: torch's default) or refuse a negative count."""
    if threads < 0:
        raise DeepSamplerError(f"--threads {threads}: use a positive number (0 = default)")
    if threads:
        import torch

        torch.set_num_threads(threads)


def offline_threads(threads: int | None) -> tuple[int, str]:
    """Threads for an offline separation and why: ``threads`` when given (0 = torch's
    default), else every core on an idle machine and 1 on a busy one."""
    if threads is not None:
        return threads, "as given" if threads else "torch's default"
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on this platform: assume busy, the safer choice
        return 1, "load unknown"
    if load < IDLE_LOAD_PER_CORE * cores:
        return cores, f"idle machine: load {load:.1f} on {cores} cores"
    return 1, f"busy machine: load {load:.1f} on {cores} cores"
