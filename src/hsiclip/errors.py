"""Errors that the command line reports as one clear line (no traceback unless --debug)."""


class HsiclipError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class SceneNotFoundError(HsiclipError):
    """A scene's files are in none of the places searched."""


class DataError(HsiclipError):
    """A data file is corrupt, inconsistent or fails its checksum."""


class ConfigError(HsiclipError):
    """A configuration value, a name or an option is invalid."""


class EncoderUnavailableError(ConfigError):
    """A text encoder's weights are not on this machine (its package is missing or the model is not cached)."""


def plural(n: int, noun: str) -> str:
    """`n` and `noun`, plural unless n is 1 ("1 pixel", "1,024 pixels"), for error messages."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
