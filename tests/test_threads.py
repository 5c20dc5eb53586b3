"""The thread-count policy: given counts are kept, an idle machine gets every core, a busy one 1."""

from __future__ import annotations

import os

import pytest

from deepsampler.errors import DeepSamplerError
from deepsampler.threads import offline_threads, set_threads


def test_given_counts_are_kept():
    assert offline_threads(3)[0] == 3
    assert offline_threads(0) == (0, "torch's default")


@pytest.mark.parametrize("load,expected", [(0.0, 4), (1.9, 4), (2.0, 1), (7.5, 1)])
def test_the_default_follows_the_load(monkeypatch, load, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    threads, why = offline_threads(None)
    assert threads == expected
    assert ("idle" if expected == 4 else "busy") in why


def test_no_load_average_counts_as_busy(monkeypatch):
    def missing():
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", missing)
    assert offline_threads(None) == (1, "load unknown")


def test_negative_counts_are_refused():
    with pytest.raises(DeepSamplerError, match="positive"):
        set_threads(-1)
