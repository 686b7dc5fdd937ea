"""``python -m eval ...`` is ``rag eval ...`` (see :mod:`eval.run`)."""

import sys

from rag.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
