"""The bench's only third-party packages (matplotlib, for the chart), pinned
in bench/requirements.txt and installed by the bench itself, so that a fresh
machine needs nothing but python3 and pip. They go into a directory of this
checkout (target/bench-python/, ignored by git), never into the system's
Python: that works where the system's Python refuses pip installs, and keeps
the pinned versions apart from whatever else is installed."""

from __future__ import annotations

import hashlib
import platform
import re
import shutil
import sys
import tempfile
from pathlib import Path

from .errors import BenchError
from .machine import BENCH, ROOT, run
from .progress import say

REQUIREMENTS = BENCH / "requirements.txt"


def pins() -> dict[str, str]:
    """Package name to pinned version, from bench/requirements.txt."""
    found = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line).groups()
            found[name.lower()] = version
    return found


def site_dir() -> Path:
    """Where this Python's copy of the pinned packages goes: named by the
    interpreter and by the pins, so a new pin or Python installs afresh."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    tag = f"{sys.implementation.cache_tag}-{platform.machine()}-{digest}"
    return ROOT / "target" / "bench-python" / tag


def install(site: Path) -> None:
    """pip install into a directory beside `site`, then renamed to it: an
    interrupted install leaves no half-made `site`, and of two runs that
    install at once, the second one's copy is dropped."""
    site.parent.mkdir(parents=True, exist_ok=True)
    wanted = ", ".join(f"{name} {version}" for name, version in pins().items())
    say(f"installing {wanted} into {site.relative_to(ROOT)} (once)")
    partial = Path(tempfile.mkdtemp(prefix=f"{site.name}.partial-", dir=site.parent))
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-input", "--no-warn-script-location", "--only-binary", ":all:",
            "--target", str(partial), "--requirement", str(REQUIREMENTS)]
    done = run(argv)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        said = (done.stdout + done.stderr).decode(errors="replace").strip()[-800:]
        hint = " (Debian: apt-get install python3-pip)" if "No module named pip" in said else ""
        raise BenchError(f"pip could not install {REQUIREMENTS.relative_to(ROOT)}{hint}: "
                         f"{said}")
    try:
        partial.rename(site)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        if not site.is_dir():
            raise


def require() -> None:
    """Makes the pinned packages importable, installing them first when this
    checkout has no copy for this Python yet."""
    site = site_dir()
    if not site.is_dir():
        install(site)
    if str(site) not in sys.path:
        sys.path.insert(0, str(site))
