"""``python -m server [--host H] [--port N] [--index DIR] [--auth U:P] [--llm ...]``: ``rag serve``
without going through the installed entry points."""

from __future__ import annotations

import argparse
import sys

from cli.main import PluginHelpers, common_flags
from rag.runtime import configure_logging, configure_process, run_command

from .command import register


def main(argv: list[str] | None = None) -> int:
    configure_process()
    parser = argparse.ArgumentParser(prog="python -m server", description="The browser app and the HTTP API.")
    register(parser.add_subparsers(dest="command", required=True), common_flags(), PluginHelpers)
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    configure_logging(verbose=args.verbose, quiet=args.quiet)
    return run_command(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
