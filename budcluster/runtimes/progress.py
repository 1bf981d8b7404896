"""Progress lines for a slow build or install: one per step, then one every ``interval_s``.

Fed the build's output line by line, it keeps what the lines say (ninja's ``[N/M]``,
make's ``[NN%]``, objects compiled, what is being linked, pip's collecting, downloading
and installing) and turns it into a short status with the elapsed time. Pure: the only
thing it does with a status is pass it to ``emit``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

__all__ = ["BuildProgress", "ProgressSink", "format_elapsed"]

ProgressSink = Callable[[str], None]
"""Where progress lines go: ``print`` to stderr by default, or a logger's ``info``."""

DEFAULT_INTERVAL_S = 10.0

_NINJA = re.compile(r"^\[(\d+)/(\d+)\]\s+(.*)$")
_MAKE = re.compile(r"^\[\s*(\d{1,3})%\]\s+(.*)$")
_COMPILE = re.compile(r"^Building \w+ object\s")
_LINK = re.compile(
    r"^Linking \w+ (?:static library|shared library|shared module|executable)\s+(\S+)"
)
_PIP_COLLECT = re.compile(r"^Collecting\s+(\S+)")
_PIP_DOWNLOAD = re.compile(r"^Downloading\s+(\S+)(?:\s+\(([^)]*)\))?")
_PIP_INSTALL = re.compile(r"^Installing collected packages:\s*(.*)$")


def format_elapsed(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class BuildProgress:
    """Status of one build, told as a few lines: each step at once, progress at most every
    ``interval_s`` (a quiet step still gets a line that long, so the wait shows)."""

    def __init__(
        self,
        what: str,
        emit: ProgressSink,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._what = what
        self._emit = emit
        self._interval_s = interval_s
        self._clock = clock
        self._started = clock()
        self._last_emit: float | None = None
        self._step: str | None = None
        self._reset_step()

    def _reset_step(self) -> None:
        self._edges: tuple[int, int] | None = None
        self._percent: int | None = None
        self._objects = 0
        self._linking: str | None = None
        self._collected = 0
        self._pip_action: str | None = None

    @property
    def emitted(self) -> bool:
        return self._last_emit is not None

    def elapsed(self) -> float:
        return self._clock() - self._started

    def step(self, name: str) -> None:
        """A new step begins: say so now."""
        self._step = name
        self._reset_step()
        self._say(f"{name} ({format_elapsed(self.elapsed())} elapsed)")

    def waiting(self, for_what: str) -> None:
        self._say(f"waiting for {for_what} ({format_elapsed(self.elapsed())} elapsed)")

    def line(self, text: str) -> None:
        """One line of the step's output."""
        self._parse(text.strip())
        self.tick()

    def tick(self) -> None:
        """Time passes: a status line if the last line is ``interval_s`` old."""
        if self._step is None or self._last_emit is None:
            return
        if self._clock() - self._last_emit >= self._interval_s:
            self._say(self.status())

    def finished(self) -> None:
        """The entry is ready; said only if something was said before (a build or a wait)."""
        if self.emitted:
            self._say(f"ready ({format_elapsed(self.elapsed())} elapsed)")

    def status(self) -> str:
        details: list[str] = []
        if self._edges is not None:
            done, total = self._edges
            details.append(f"{100 * done // max(total, 1)}% ({done}/{total})")
        elif self._percent is not None:
            details.append(f"{self._percent}%")
        if self._objects:
            details.append(f"{self._objects} objects compiled")
        if self._linking:
            details.append(f"linking {self._linking}")
        if self._collected:
            details.append(f"{self._collected} packages collected")
        if self._pip_action:
            details.append(self._pip_action)
        shown = f": {', '.join(details)}" if details else ""
        return f"{self._step}{shown} ({format_elapsed(self.elapsed())} elapsed)"

    def _say(self, text: str) -> None:
        self._last_emit = self._clock()
        self._emit(f"{self._what}: {text}")

    def _parse(self, text: str) -> None:
        action = text
        if ninja := _NINJA.match(text):
            self._edges = (int(ninja[1]), int(ninja[2]))
            action = ninja[3]
        elif make := _MAKE.match(text):
            self._percent = int(make[1])
            action = make[2]
        if _COMPILE.match(action):
            self._objects += 1
            self._linking = None
        elif link := _LINK.match(action):
            self._linking = link[1].rsplit("/", 1)[-1]
        elif collect := _PIP_COLLECT.match(action):
            self._collected += 1
            self._pip_action = f"collecting {collect[1]}"
        elif download := _PIP_DOWNLOAD.match(action):
            size = f" ({download[2]})" if download[2] else ""
            self._pip_action = f"downloading {download[1].rsplit('/', 1)[-1]}{size}"
        elif install := _PIP_INSTALL.match(action):
            count = len([name for name in install[1].split(",") if name.strip()])
            self._pip_action = f"installing {count} packages"
