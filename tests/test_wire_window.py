"""Wire copies are looked for only among indexed articles dated near the new ones
(real index, real ingest)."""

from __future__ import annotations

import json

from rag.engine import Engine
from rag.ingest.wire import could_copy

from .conftest import make_settings

STORY = (
    "The harbour authority said on Tuesday that the old swing bridge will reopen to traffic next month "
    "after a two-year repair that replaced all forty cable anchors and the deck's steel plates. "
    "Engineers found corrosion far worse than the first survey suggested, which doubled the cost. "
    "Ferry services that ran during the closure will stop a week after the reopening, the authority said, "
    "and tolls will stay at last year's level until the end of the season."
)


def article(source: str, date: str | None) -> dict:
    # Each outlet's own headline (an article's id hashes its title and text).
    a = {"title": f"Harbour bridge to reopen after repairs, {source} reports", "source": source, "body": STORY}
    if date:
        a["published_at"] = date
    return a


def test_only_articles_within_the_window_are_candidates(tmp_path, embedder):
    engine = Engine(make_settings(tmp_path / "index"), embedder=embedder)
    first = tmp_path / "first.json"
    first.write_text(json.dumps([article("Alpha Times", "2023-03-01"),
                                 article("Beta Post", "2023-03-03")]), encoding="utf-8")
    assert len(engine.ingest([first], show_progress=False).added) == 2
    arts = {a.source: a for a, _ in engine.articles()}
    assert arts["Beta Post"].group == arts["Alpha Times"].group  # a copy two days later

    late = tmp_path / "late.json"
    late.write_text(json.dumps([article("Gamma News", "2025-06-01")]), encoding="utf-8")
    assert len(engine.ingest([late], show_progress=False).added) == 1
    arts = {a.source: a for a, _ in engine.articles()}
    assert arts["Gamma News"].group == arts["Gamma News"].article_id  # re-run two years later: news again

    indexed = [arts["Alpha Times"], arts["Beta Post"]]
    window = engine.settings.wire_window_days
    assert could_copy(indexed, [arts["Gamma News"]], window) == []  # nothing loaded or hashed for it
    assert could_copy(indexed, [arts["Beta Post"]], window) == indexed
    undated = Engine(make_settings(tmp_path / "other"), embedder=embedder)
    f = tmp_path / "undated.json"
    f.write_text(json.dumps([article("Delta Daily", None)]), encoding="utf-8")
    undated.ingest([f], show_progress=False)
    [(d, _)] = undated.articles()
    assert not d.has_real_date and could_copy(indexed, [d], window) == indexed  # may copy anything
