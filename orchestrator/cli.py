"""The `driftlab` command: one entry point, one subcommand per job.

    driftlab trial [--method M] [--lr X] ... [--json]     one trial in-process, no Ray
    driftlab pretrain-world                               rebuild the embedded tiny CLIP

Exit codes: 0 ok, 2 bad input (one line naming the field), 1 failure.
"""

from __future__ import annotations

import sys

COMMANDS = {
    "trial": ("orchestrator.trial_cli", "run one trial in-process, no Ray"),
    "pretrain-world": ("trainables.pretrain_world", "pretrain the embedded tiny CLIP on the procedural world"),
}


def usage() -> str:
    rows = "\n".join(f"  {name:<16}{help_}" for name, (_, help_) in COMMANDS.items())
    return f"usage: driftlab COMMAND [ARGS]\n\ncommands:\n{rows}\n\n`driftlab COMMAND --help` for a command's flags."


def main(argv: list[str] | None = None) -> int:
    import importlib

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"driftlab: command: {argv[0]!r} is not one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
