"""Stop signals around a run: while it starts (:class:`Starting`: a stop raises :class:`Interrupted`, nothing is
written), while it trains (:class:`Stops`: the first signal lets the running chunk finish and save, the second
abandons it) and while its files move into place (:func:`signals_held`)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Any, Callable

import jax

__all__ = ["Abandon", "Interrupted", "Starting", "Stops", "signals_held"]


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT or SIGTERM) that arrived while a run was starting: nothing was written."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Abandon(Exception):
    """Raised by the second stop signal while the host waits for a chunk: leave that chunk unfinished."""


class Stops:
    """SIGINT/SIGTERM while a run trains (main thread only). The first asks the run to stop after the running
    chunk and save; the second abandons the running chunk (the state after the last finished one is saved);
    after that the signals act as they did before the run."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, describe: Any, starting: "Starting | None" = None):
        self.received: list[int] = []
        self.waiting = False
        self.describe = describe  # () -> what the first signal's message says will happen
        self.active = threading.current_thread() is threading.main_thread()
        self.previous: dict = {}
        self.starting = starting

    def __enter__(self) -> "Stops":
        """Take over the signals; from a :class:`Starting` without a moment in which neither handles them
        (their handlers are replaced by these, and the ones from before the start are restored on exit)."""
        if self.active:
            handed = self.starting.previous if self.starting is not None else {}
            try:
                for s in self.SIGNALS:
                    before = handed.get(s, signal.getsignal(s))
                    if before in (signal.SIG_IGN, None):  # one the user chose to ignore (nohup) stays ignored
                        continue
                    signal.signal(s, self._handle)
                    self.previous[s] = before
            except BaseException:  # a stop signal while handing over: the start's handlers stay in charge
                self._restore()
                raise
            if self.starting is not None:
                self.starting.previous = {}
        return self

    def _restore(self) -> None:
        for s, h in self.previous.items():
            signal.signal(s, h)
        self.previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        name = signal.Signals(signum).name
        if len(self.received) == 1:
            print(f"\npurerl: {name}: {self.describe()}; send it again (Ctrl-C) to stop at once", file=sys.stderr,
                  flush=True)
            return
        self._restore()
        print(f"\npurerl: {name} again: stopping now", file=sys.stderr, flush=True)
        if self.waiting:
            raise Abandon()

    @property
    def stop(self) -> bool:
        return bool(self.received)

    @property
    def abandon(self) -> bool:
        return len(self.received) >= 2

    def run(self, fn: Callable[[], Any]) -> Any:
        """``fn()``'s outputs once computed, waiting so that a second signal can interrupt (``Abandon``). The
        call runs on a helper thread: a program with a host callback (the progress bar) runs synchronously in
        the calling thread, and Python runs signal handlers in the main thread only between its own steps."""
        if not self.active:
            return jax.block_until_ready(fn())
        result: list = []
        done = threading.Event()

        def call():
            try:
                result.append((True, jax.block_until_ready(fn())))
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                result.append((False, e))
            finally:
                done.set()

        threading.Thread(target=call, daemon=True, name="purerl-chunk").start()
        self.waiting = True
        try:
            while not done.wait(0.05):  # short slices: the handlers run between them
                if self.abandon:
                    raise Abandon()
        finally:
            self.waiting = False
        ok, value = result[0]
        if not ok:
            raise value
        return value

    def __exit__(self, *exc) -> None:
        self._restore()


class Starting:
    """While a run starts (validation, tracing, compiling): SIGTERM and Ctrl-C raise :class:`Interrupted`, so a
    stopped start cleans up after itself and says that nothing was written. Python prints and then ignores an
    exception raised while it runs a garbage-collection callback (jax has one) or a finaliser; a stop signal
    that lands there is recorded, printed nothing for, and raised at the next :meth:`check` or when the start
    ends. :meth:`end` (or a :class:`Stops` given this object) hands over to the training loop's own handling."""

    def __init__(self):
        self.active = threading.current_thread() is threading.main_thread()
        self.ended = False
        self.previous: dict = {}
        self.seen: int | None = None
        self._hook: Any = None

    def __enter__(self) -> "Starting":
        if self.active:
            for signum in (signal.SIGTERM, signal.SIGINT):
                if signal.getsignal(signum) not in (signal.SIG_IGN, None):
                    self.previous[signum] = signal.signal(signum, self._handle)
            self._hook = sys.unraisablehook
            sys.unraisablehook = self._unraisable
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.seen = signum
        raise Interrupted(signum)

    def _unraisable(self, unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, Interrupted):
            return  # recorded in self.seen; raised again by check() or end()
        self._hook(unraisable)

    def check(self) -> None:
        """Raise a stop signal that arrived during the start and was swallowed on the way."""
        if self.seen is not None and not self.ended:
            raise Interrupted(self.seen)

    def end(self, raise_pending: bool = True) -> None:
        if not self.ended:
            self.ended = True
            for signum, handler in self.previous.items():
                signal.signal(signum, handler)
            self.previous = {}
            if self._hook is not None and sys.unraisablehook == self._unraisable:
                sys.unraisablehook = self._hook
            if raise_pending and self.seen is not None:
                raise Interrupted(self.seen)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        starting = not self.ended
        self.end(raise_pending=exc is None)
        if starting and isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
            raise Interrupted(signal.SIGINT) from None


@contextlib.contextmanager
def signals_held():
    """SIGINT and SIGTERM wait while the block runs (main thread): recorded, then raised again for the handlers
    of before once it is over, so that moving a new run into its directory is never cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {}
    for s in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(s) not in (signal.SIG_IGN, None):
            previous[s] = signal.signal(s, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in pending:
            signal.raise_signal(s)
