"""DeepSampler: real-time audio source separation.

Axis legend used in every docstring: ``b`` batch, ``s`` sources, ``c`` audio channels,
``f`` frequency bins, ``t`` STFT frames, ``n`` bands, ``d`` features; waveforms are
``[b, c, samples]`` and separated stems ``[b, s, c, samples]``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deepsampler")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from deepsampler.errors import DeepSamplerError  # noqa: E402


def __getattr__(name: str):
    # the facade pulls in torch; import it only when asked for
    if name in ("Separator", "SeparationResult"):
        from deepsampler import separator

        return getattr(separator, name)
    raise AttributeError(f"module 'deepsampler' has no attribute {name!r}")


__all__ = ["DeepSamplerError", "Separator", "SeparationResult", "__version__"]
