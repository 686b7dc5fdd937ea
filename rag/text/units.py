"""Which sentence units each passage covers: the one owner of that mapping."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def unit_runs(units: Sequence, passages: Sequence) -> list[tuple[int, int]]:
    """Per passage, the run ``[lo, hi)`` of ``units`` lying inside it.

    Both are spans (``.start``/``.end``) of one article, units in text order;
    passages are runs of whole units, so the run starts at the first unit that
    starts at or after the passage and ends after the last that ends inside it.
    """
    starts = np.array([u.start for u in units])
    ends = np.array([u.end for u in units])
    return [(int(np.searchsorted(starts, p.start, side="left")), int(np.searchsorted(ends, p.end, side="right")))
            for p in passages]
