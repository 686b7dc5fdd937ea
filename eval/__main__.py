"""``python -m eval``: the evaluation, as ``rag eval``."""

import sys

from eval.command import main

sys.exit(main())
