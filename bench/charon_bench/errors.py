"""The one exception that fails a run: every module raises it with a message
that says what went wrong, and the entry points print it and exit 1."""


class BenchError(Exception):
    """A failure that makes the run fail (the message says what)."""
