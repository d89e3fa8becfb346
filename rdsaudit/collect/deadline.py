"""The scan's overall deadline (`--timeout`), and running work that may not outlive it.

botocore has only a connect and a per-read socket timeout: a server that sends one byte
every few seconds never trips a read timeout, and a silent one costs the read timeout on
every attempt. Nothing interrupts a thread stuck inside such a read. So the deadline is
kept by the threads that wait, never by the ones that call: every AWS call runs on a
*daemon* thread (the scanner's workers, one thread per account, `bounded` for the calls
before the accounts), and the waiting thread stops waiting when the deadline comes. Daemon
threads are not joined when the interpreter exits (unlike `concurrent.futures` pools, whose
threads an atexit hook joins), so a stuck call can never hold the process: rdsaudit records
what it could not read as errors, writes its reports and exits.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 3600.0  # seconds
# After the deadline, how long a waiting thread still gives work to hand back what it read.
GRACE = 5.0


class DeadlineExceeded(Exception):
    """The scan's deadline passed before this call could be made or answered."""


class Deadline:
    """When the whole scan must end; shared by every thread of the scan."""

    def __init__(self, seconds: float | None = DEFAULT_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.seconds = seconds
        self.at = math.inf if seconds is None else clock() + seconds
        self._expired = threading.Event()

    def remaining(self) -> float:
        return max(0.0, self.at - self._clock())

    @property
    def expired(self) -> bool:
        if not self._expired.is_set() and self._clock() >= self.at:
            self._expired.set()
        return self._expired.is_set()

    def past(self, grace: float = 0.0) -> bool:
        """Whether the deadline, plus `grace` seconds, has passed."""
        return self._clock() >= self.at + grace

    def check(self, operation: str) -> None:
        """Refuse to start a call once the deadline has passed."""
        if self.expired:
            raise DeadlineExceeded(f"{operation} not called: the --timeout deadline "
                                   f"({self.seconds:g} s) passed")


def bounded(fn: Callable[[], T], deadline: Deadline, what: str) -> T:
    """`fn()` on a daemon thread; its result, or `DeadlineExceeded` if the deadline (plus
    `GRACE`) comes first. The thread is left behind, never joined."""
    box: list[T] = []
    crash: list[BaseException] = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            crash.append(exc)

    thread = threading.Thread(target=run, name=f"rdsaudit-{what}", daemon=True)
    thread.start()
    while thread.is_alive() and not deadline.past(GRACE):
        thread.join(0.5)
    if crash:
        raise crash[0]
    if not box:
        raise DeadlineExceeded(f"{what}: no answer before the --timeout deadline "
                               f"({deadline.seconds:g} s)")
    return box[0]
