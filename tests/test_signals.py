"""A command that turned a signal into KeyboardInterrupt ends with its own exit code, even where the
signal landed inside exec() of a string (as it does while dataclasses and namedtuples are built at import)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# SIGTERM arrives inside exec() of a string, is routed to KeyboardInterrupt by `signals`, and is caught.
SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from orchestrator import signals
    with signals.handling():
        try:
            exec("os.kill(os.getpid(), signal.SIGTERM)\\nimport time\\ntime.sleep(30)")
        except KeyboardInterrupt:
            print("caught", flush=True)
    {exit}(signals.exit_code())
""")


def _run(tmp_path: Path, exit_call: str) -> subprocess.CompletedProcess:
    """The script run as `python -m`, as `driftlab` runs under tests and `ray job submit`."""
    (tmp_path / "interrupted.py").write_text(SCRIPT.format(exit=exit_call))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "interrupted"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)


def test_exit_process_keeps_the_commands_code_after_a_signal_caught_inside_exec(tmp_path):
    out = _run(tmp_path, "signals.exit_process")
    assert out.stdout == "caught\n" and out.returncode == 143, out.stderr


def test_plain_sys_exit_would_end_by_sigint_instead(tmp_path):
    """The CPython behaviour `exit_process` exists for: the caught interrupt still ends the process by SIGINT."""
    out = _run(tmp_path, "sys.exit")
    assert out.stdout == "caught\n"
    if out.returncode == 143:
        pytest.skip("this Python keeps the exit code after an interrupt caught inside exec()")
    assert out.returncode == -2, out.stderr
