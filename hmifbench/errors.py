"""Exceptions that carry a message meant for the user, not a traceback."""


class HmifError(Exception):
    """Base class of the errors hmifbench raises on purpose."""


class InputError(HmifError, ValueError):
    """Bad input: wrong shape, band count, scale, NaN, unreadable file, ..."""


class ConfigError(HmifError, ValueError):
    """An invalid configuration; the message names the offending key."""


class MethodNotFound(HmifError, KeyError):
    """No method with that name is registered."""

    def __str__(self):  # KeyError quotes its message; we want it plain.
        return str(self.args[0]) if self.args else ""
