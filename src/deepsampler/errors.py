"""User-facing errors: one line that says what is wrong and what to do."""


class DeepSamplerError(Exception):
    """An error caused by the user's input or environment, shown as one line by the CLI."""


class AudioInputError(DeepSamplerError):
    """An input audio file is missing, unreadable, empty, non-finite or has unusable channels."""


class OutputError(DeepSamplerError):
    """An output location cannot be written."""


class CheckpointError(DeepSamplerError):
    """A checkpoint is unknown, of an unsupported version, tampered with, or mismatched."""


class ConfigError(DeepSamplerError):
    """A configuration has unknown keys or values of the wrong type."""


class AudioWarning(UserWarning):
    """An input audio file reads but is not whole (e.g. truncated); the CLI shows it as a line."""
