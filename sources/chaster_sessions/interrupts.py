"""Stopping a run on SIGINT (Ctrl-C) or SIGTERM: what it committed stands, and it says so.

The command installs `stop_on_signals()` for its whole run; nothing is installed at import, and
a library user's own handlers are left alone. A first signal raises `Interrupted` in the main
thread at once while the source is fetching (the chunk in progress is dropped; the next run
fetches it again), but while dlt commits a chunk (normalize, load) it only takes note: the chunk
is committed, then the runner raises. A second signal ends the process at once, as the signal's
default action does.

dlt intercepts these signals itself during normalize and load, and forgets a signal once a
load completes (the run went on as if nothing was asked). While the command's handlers are
installed, dlt's are turned off (`RUNTIME__INTERCEPT_SIGNALS`), so there is one handler.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from dlt.common.exceptions import SignalReceivedException

from .errors import chain

SIGNALS = (signal.SIGINT, signal.SIGTERM)
DLT_INTERCEPTS = "RUNTIME__INTERCEPT_SIGNALS"


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop by a signal. A KeyboardInterrupt, so code that handles Ctrl-C
    handles SIGTERM alike. The runner fills in what the run had committed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.chunks = 0  # chunks the run committed before it stopped
        self.new_sessions: int | None = 0  # sessions it added; None: the destination was unread

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended."""
        return 128 + self.signum

    def describe(self) -> str:
        """The line the command prints (after `error: `) and the runs table keeps."""
        plural = "" if self.chunks == 1 else "s"
        new = (
            "new sessions unknown: the destination could not be read"
            if self.new_sessions is None
            else f"{self.new_sessions:,} new session{'' if self.new_sessions == 1 else 's'}"
        )
        return (
            f"interrupted ({self.name}) after {self.chunks} committed chunk{plural} ({new}); "
            "the next run resumes"
        )


def interruption(exc: BaseException) -> Interrupted | None:
    """The interrupt inside dlt's wrappers (`PipelineStepFailed`), if the run was interrupted:
    the command's own, dlt's `SignalReceivedException` (where dlt's handlers caught it), or a
    plain KeyboardInterrupt (Ctrl-C where no handler is installed)."""
    found = list(chain(exc))
    for current in found:
        if isinstance(current, Interrupted):
            return current
    for current in found:
        if isinstance(current, SignalReceivedException) and current.signal_code in SIGNALS:
            return Interrupted(current.signal_code)
        if isinstance(current, KeyboardInterrupt):
            return Interrupted(signal.SIGINT)
    return None


@dataclass
class _Guard:
    received: int | None = None  # the first signal
    raised: bool = False  # `Interrupted` was raised for it
    committing: int = 0  # depth of `committing()`: dlt is normalizing or loading a chunk
    fetching: int = 0  # depth of `fetching()`: the source is fetching pages


_guard: _Guard | None = None


def _stop(guard: _Guard) -> None:
    if guard.received is not None and not guard.raised:
        guard.raised = True
        raise Interrupted(guard.received)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    guard = _guard
    if guard is None:  # restored meanwhile; cannot happen while installed
        return
    if guard.received is not None:  # the second signal: at once, no cleanup
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
        return
    guard.received = signum
    if guard.fetching or not guard.committing:
        _stop(guard)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM stop the run as the module docstring says; the
    previous handlers and dlt's setting come back afterwards. A no-op outside the main thread
    (only it can have signal handlers) and when already installed."""
    global _guard
    if threading.current_thread() is not threading.main_thread() or _guard is not None:
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    dlt_setting = os.environ.get(DLT_INTERCEPTS)
    os.environ[DLT_INTERCEPTS] = "false"
    _guard = _Guard()
    try:
        for signum in SIGNALS:
            if previous[signum] is not signal.SIG_IGN:  # `nohup`, `cmd &` in a script: kept
                signal.signal(signum, _on_signal)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        _guard = None
        if dlt_setting is None:
            os.environ.pop(DLT_INTERCEPTS, None)
        else:
            os.environ[DLT_INTERCEPTS] = dlt_setting


def stopping() -> bool:
    """Whether the command was asked to stop: what is left of the run should not wait."""
    return _guard is not None and _guard.received is not None


@contextmanager
def _held(guard: _Guard) -> Iterator[None]:
    """A signal inside only takes note (`_on_signal`), whatever dlt is doing meanwhile."""
    guard.committing += 1
    try:
        yield
    finally:
        guard.committing -= 1


@contextmanager
def committing() -> Iterator[None]:
    """dlt runs a chunk in here: a signal waits until the chunk is committed (the source's own
    fetching, inside `fetching`, still stops at once). Raises `Interrupted` at the end of the
    block if a signal came meanwhile."""
    guard = _guard
    if guard is None:
        yield
        return
    with _held(guard):
        yield
    _stop(guard)


@contextmanager
def finishing() -> Iterator[None]:
    """The load has ended and is recorded; what is left (the summary, the report page) runs
    to its end, so the run ends as recorded. A second signal still ends it at once."""
    guard = _guard
    if guard is None:
        yield
        return
    with _held(guard):
        yield


def begin_fetching() -> None:
    """The source starts fetching: a signal stops it at once (one that came while dlt was
    getting ready does so now). Paired with `end_fetching`, which a generator's `finally`
    calls, as a `with` block cannot span a generator's yields safely."""
    guard = _guard
    if guard is not None:
        guard.fetching += 1
        _stop(guard)


def end_fetching() -> None:
    guard = _guard
    if guard is not None and guard.fetching:
        guard.fetching -= 1
