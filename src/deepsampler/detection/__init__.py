"""Sound-event detection on separated streams: siren probability per frame (the ``sde`` model),
events by hysteresis, streaming alerts.

``Detector(name_or_path).detect(x, sample_rate) -> [Event]``; ``Detector.stream()`` gives a
:class:`StreamingDetector` whose ``push(block)`` returns :class:`Alert` s.
"""

from deepsampler.detection.checkpoint import (
    DEFAULT_DETECTOR,
    DetectionSettings,
    load_detector,
    save_detector,
)
from deepsampler.detection.detector import Detector, StreamingDetector
from deepsampler.detection.events import (
    Alert,
    Event,
    EventConfig,
    EventTracker,
    events_from_alerts,
    find_events,
)

__all__ = [
    "DEFAULT_DETECTOR",
    "Alert",
    "DetectionSettings",
    "Detector",
    "Event",
    "EventConfig",
    "EventTracker",
    "StreamingDetector",
    "events_from_alerts",
    "find_events",
    "load_detector",
    "save_detector",
]
