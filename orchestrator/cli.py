"""The `driftlab` command: one entry point, one subcommand per job.

    driftlab run [SPEC] [--address A] [--tracking-uri U]  a sweep (no SPEC = the embedded demo)
    driftlab trial [--method M] [--lr X] ... [--json]     one trial in-process, no Ray
    driftlab analyze --experiment NAME | --csv FILE       permutation tests + report
    driftlab wise RUN_ID [--alphas 0,0.5,1]               WiSE-FT frontier of a finished trial
    driftlab ui | validate FILE | sync NAME | pretrain-world

Exit codes: 0 ok, 2 bad input (one line naming the field), 1 failure.
"""

from __future__ import annotations

import sys

COMMANDS = {
    "run": ("orchestrator.run_cli", "run a sweep on Ray Tune, tracked in MLflow (no SPEC = embedded demo)"),
    "trial": ("orchestrator.trial_cli", "run one trial in-process, no Ray"),
    "analyze": ("orchestrator.analyze_cli", "permutation tests over completed trials, report + figures"),
    "ui": ("orchestrator.ui_cli", "serve the MLflow UI for the local tracking store on 127.0.0.1"),
    "validate": ("orchestrator.validate_cli", "check sweep specs and cluster.yaml without running anything"),
    "wise": ("orchestrator.wise_cli", "the WiSE-FT frontier (drift at every α) of a finished trial run"),
    "sync": ("orchestrator.sync_cli", "replay a sweep's Tune results into MLflow"),
    "pretrain-world": ("trainables.pretrain_world", "pretrain the embedded tiny CLIP on the procedural world"),
}


def parse_args(parser, argv):
    """argparse without its SystemExit: (args, None), or (None, exit code) - 0 after --help, 2 on bad usage.

    A usage error is one line (argparse would print the whole usage block first).
    """
    def one_line(message: str) -> None:
        print(f"driftlab: {message} (see `{parser.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)

    parser.error = one_line
    try:
        return parser.parse_args(argv), None
    except SystemExit as exit_:
        return None, (2 if exit_.code else 0)


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


def entry() -> None:
    """The `driftlab` executable: `main`, then exit with its code (see `signals.exit_process`)."""
    from orchestrator import signals

    signals.exit_process(main())


if __name__ == "__main__":
    entry()
