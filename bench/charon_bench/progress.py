"""What the run tells the person at the terminal while it goes: progress lines
on stderr, and the count of checks passed, which the smoke's closing line
("smoke: N passed, 0 failed") reports."""

import sys

_passed = 0


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def check_passed() -> None:
    """One step (a command run, a load, a profile) ran and passed its checks."""
    global _passed
    _passed += 1


def checks_passed() -> int:
    return _passed
