"""``rag eval`` (plugged into the ``rag`` command) and ``python -m eval``."""

from __future__ import annotations

import argparse

from rag.runtime import configure_logging, configure_process, run_command


def register(sub, common, helpers) -> None:  # noqa: ARG001 - common/helpers: the plugin API
    """Add ``rag eval`` to the ``rag`` command's subcommands."""
    from eval.run import add_arguments, run_from_args

    s = sub.add_parser("eval", help="evaluate configurations on a question set (writes a report)")
    add_arguments(s)
    s.set_defaults(func=run_from_args)


def main(argv: list[str] | None = None) -> int:
    """``python -m eval ...``: the same as ``rag eval ...``."""
    from eval.run import add_arguments, run_from_args

    configure_process()
    p = argparse.ArgumentParser(prog="python -m eval", description="Evaluate configurations on a question set.")
    add_arguments(p)
    args = p.parse_args(argv)
    configure_logging(verbose=args.verbose, quiet=args.quiet)
    return run_command(lambda: run_from_args(args))
