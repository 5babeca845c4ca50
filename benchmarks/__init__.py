"""Performance ratios of driftlab against the bare work it wraps, each measured within one run.

    python -m benchmarks [--smoke] [--json] [--only NAME,...]

See BENCHMARKS.md for the targets, the figures measured here and what was changed to reach them.
"""
