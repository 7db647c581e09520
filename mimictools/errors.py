"""One error hierarchy for the whole library.

Messages say what was wrong, where (file, frame, column, joint name) and what is valid.
The CLI turns any `MimicToolsError` into a one-line red message and exit code 2 (bad input);
library code validates with `raise`, never `assert`.
"""

from __future__ import annotations

MAX_MESSAGE_CHARS = 600
"""Messages longer than this are cut (with '...'), and line breaks become spaces: a hostile file cannot
make an error of megabytes or of many lines."""


class MimicToolsError(Exception):
    """Base class: bad input or an unsupported request. CLI exit code 2."""

    exit_code = 2

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            msg = " ".join(args[0].splitlines()) if "\n" in args[0] or "\r" in args[0] else args[0]
            args = (msg if len(msg) <= MAX_MESSAGE_CHARS else msg[: MAX_MESSAGE_CHARS - 3] + "...",)
        super().__init__(*args)


class MotionFormatError(MimicToolsError):
    """A motion file (pkl/txt/bvh/yaml) is malformed, truncated or unsafe."""


class UnsafePickleError(MotionFormatError):
    """A pickle tried to load a class or call a function outside the allow-list."""


class CharacterError(MimicToolsError):
    """An MJCF character is malformed or uses a construct we do not support."""


class ConfigError(MimicToolsError):
    """A config file or --set override has an unknown key or an invalid value."""


class NotSupportedError(MimicToolsError):
    """A valid request for a feature that is not built yet."""


class EngineError(MimicToolsError):
    """A simulation engine is unavailable or was used incorrectly."""


class CheckpointError(MimicToolsError):
    """A checkpoint is missing, corrupt or incompatible."""


class OutputError(MimicToolsError):
    """An output file or folder cannot be written: not a folder, read-only, in use by another run, or
    the disk is full."""


class TrainingDivergedError(MimicToolsError):
    """NaN/inf appeared in observations, actions or losses during training."""

    exit_code = 1
