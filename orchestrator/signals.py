"""SIGINT, SIGTERM and SIGHUP all stop a driver the way Ctrl-C should: cleanly, and on the record.

    with signals.handling():        # for the whole command; signals.install() again after
        ...                         # ray.init (Ray's C++ handler turns SIGTERM into a native
                                    # stack dump and exit 134)
    with signals.tune_running():    # while Tune runs, the first signal asks it to stop
        tuner.fit()
    signals.received                # the signals seen, in order; exit code 128 + the first

While Tune runs, the first signal triggers Tune's own graceful stop (it saves the
experiment state, so the sweep resumes); any later signal, or one outside Tune, raises
KeyboardInterrupt so the `finally` blocks stop Ray and the MLflow server (`shield()` lets
those blocks finish; a SIGKILL is the watchdog's to clean up after). Tune's own
SIGINT handler is switched off (TUNE_DISABLE_SIGINT_HANDLER) so that every signal takes
this one path; Tune's SIGUSR1 handler, which it installs for each run, is the way in.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
from typing import NoReturn

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
received: list[int] = []
_tune = False
_shielded = False


@contextlib.contextmanager
def handling():
    """For one command: route SIGINT, SIGTERM and SIGHUP here, then put the previous handlers back
    (in-process callers such as tests keep their own Ctrl-C)."""
    global _shielded
    received.clear()
    _shielded = False
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    install()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def install() -> None:
    """Route SIGINT, SIGTERM and SIGHUP to this module (again after ray.init: see the module doc)."""
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    for sig in SIGNALS:
        signal.signal(sig, _handle)


def _handle(signum, frame) -> None:
    received.append(signum)
    if _shielded:
        return
    tune_stop = signal.getsignal(signal.SIGUSR1)
    if _tune and len(received) == 1 and callable(tune_stop):
        tune_stop(signal.SIGUSR1, frame)  # Tune: stop after saving the experiment state
        return
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def tune_running():
    global _tune
    _tune = True
    try:
        yield
    finally:
        _tune = False


def shield() -> None:
    """From now on only record signals: cleanup (stopping Ray and the server) must run to its end."""
    global _shielded
    _shielded = True


def exit_code() -> int | None:
    """128 + the first signal received (130 SIGINT, 143 SIGTERM, 129 SIGHUP), or None."""
    return 128 + received[0] if received else None


def name() -> str:
    return signal.Signals(received[0]).name if received else ""


def exit_process(code: int) -> NoReturn:
    """End the `driftlab` process with `code`, also after a signal was turned into KeyboardInterrupt.

    CPython marks a KeyboardInterrupt raised inside exec() or eval() of a string as unhandled even when
    it is caught, and then ends the process by SIGINT after finalisation, in place of the exit code
    (dataclasses and namedtuple build their methods with exec of a string, so a SIGTERM landing while a
    module imports hits it: `driftlab ui` exited -2 instead of 0). After a signal, every cleanup of the
    command has run by now (its finally blocks), so the process ends here, skipping only the
    interpreter's finalisation."""
    if received:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        os._exit(code)
    # The interpreter's last garbage collection walks every object torch, transformers, Ray and MLflow made
    # (1.0 of the 1.2 s a `driftlab trial` took to exit on 2 cores); frozen, they are left to the process's
    # end. atexit handlers, the flush of the standard streams and every finally block still run.
    gc.freeze()
    sys.exit(code)
