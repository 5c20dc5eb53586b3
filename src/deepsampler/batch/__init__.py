"""Folder and catalogue separation with a resumable manifest; the process pool and the Ray
runner.

A run separates a list of files into ``OUT/<track>/<stem>.<fmt>`` and appends one line per
finished file to ``OUT/manifest.jsonl`` (:mod:`.manifest`); a rerun plans from it what is
complete, failed or still to do (:mod:`.plan`). The work itself runs in this process, in a pool
of worker processes (:mod:`.local`) or on a Ray cluster (:mod:`.ray_runner`); all three call
:func:`.job.separate_one` and stream :class:`.job.Outcome` back to :func:`.run.execute`, the one
place that records them.
"""

from deepsampler.batch.job import Outcome, SeparationJob, separate_one
from deepsampler.batch.manifest import Manifest
from deepsampler.batch.plan import Plan, catalogue_inputs, plan_run
from deepsampler.batch.run import Summary, execute

__all__ = [
    "Manifest",
    "Outcome",
    "Plan",
    "SeparationJob",
    "Summary",
    "catalogue_inputs",
    "execute",
    "plan_run",
    "separate_one",
]
