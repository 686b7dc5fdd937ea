"""A labelled set for wire-copy grouping, built from real articles, and its measurement.

    python -m eval.wire_set build   [--corpus corpus.json] [--out eval/data/wire-copies.jsonl]
    python -m eval.wire_set measure [--set eval/data/wire-copies.jsonl] [--corpus corpus.json]

**The set** (``eval/data/wire-copies.jsonl``, one record per page) is made of MultiHop-RAG
corpus articles (real news):

* *copies*: 120 articles, each re-published by another outlet the way syndication
  does it: the page wrapped in that outlet's boilerplate (HTML or a page saved as
  text), a changed headline, a wire dateline or a local intro, a few words edited,
  the last paragraphs cut (some copies keep only 60%), a credit line added, dated up
  to 36 hours later;
* *same-event pairs*: for each of those, the most similar *other* article of the
  corpus (TF-IDF cosine of the bodies, published within 7 days): a different story
  on the same event or topic, which must not be grouped.

Records hold the recipe (corpus index, outlet, format, edits, date), not the text:
``build`` is deterministic (seeded), and :func:`materialize` writes the pages from the
shared corpus. Each record carries the SHA-256 of its page so drift shows.

**Measuring** reads every page with the ingest readers (cleaning included), then
groups them in ingest order with (a) the ingest's own MinHash/LSH + containment
check (:func:`rag.ingest.curation.group_wire_copies`) at several thresholds and (b)
embedding similarity (mean passage-free article embedding, all-MiniLM-L6-v2) inside
the same date window at several cosine thresholds. Pairwise precision and recall:
a predicted pair is two pages put in one group; a true pair is an original and its copy.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import logging
import random
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

log = logging.getLogger("rag.eval.wire")

EVAL_DIR = Path(__file__).resolve().parent
DEFAULT_CORPUS = EVAL_DIR.parent.parent / "shared" / "benchmarks" / "multihop-rag" / "corpus.json"
DEFAULT_SET = EVAL_DIR / "data" / "wire-copies.jsonl"
N_STORIES = 120
SEED = 18

OUTLETS = [
    ("Harbour Herald", "harbourherald.example", "html"),
    ("Midland Wire Service", "midlandwire.example", "txt"),
    ("The Northern Courier", "northerncourier.example", "html"),
    ("Valley News Online", "valleynews.example", "txt"),
]
# Light copy edits an outlet makes: (pattern, replacement), applied to at most a few hits.
WORD_EDITS = [
    (r"\bpercent\b", "%"), (r"\bsaid\b", "says"), (r"\bU\.S\.", "US"), (r"\bmillion\b", "mln"),
    (r"\bbillion\b", "bln"), (r"\borganization\b", "organisation"), (r"\bcenter\b", "centre"),
    (r"\bthat\b", "which"), (r"\bhowever\b", "but"), (r"\bapproximately\b", "about"),
]
LOCAL_INTROS = [
    "Readers across the region have followed this story closely.",
    "The following report was distributed by a news agency.",
    "Here is the latest on a story we have been following.",
]
CREDITS = ["(Reporting by staff; Editing by the news desk)", "— With agency reporting", "Additional reporting by wire services."]


# ------------------------------------------------------------------------------ build


def _paragraphs(body: str) -> list[str]:
    paras = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]
    if len(paras) >= 3:
        return paras
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z])", body.strip())
    return [" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]


def _tfidf_neighbours(corpus: list[dict]) -> list[list[tuple[float, int]]]:
    """For each article, the other articles by TF-IDF cosine of their bodies, best first."""
    import numpy as np

    docs = [re.findall(r"[a-z]{3,}", (a["title"] + " " + a["body"]).lower()) for a in corpus]
    vocab: dict[str, int] = {}
    for d in docs:
        for w in set(d):
            vocab.setdefault(w, len(vocab))
    df = np.zeros(len(vocab))
    for d in docs:
        for w in set(d):
            df[vocab[w]] += 1
    idf = np.log(len(docs) / df)
    mat = np.zeros((len(docs), len(vocab)), dtype=np.float32)
    for i, d in enumerate(docs):
        for w in d:
            mat[i, vocab[w]] += 1
    mat = np.log1p(mat) * idf
    mat /= np.linalg.norm(mat, axis=1, keepdims=True) + 1e-9
    sims = mat @ mat.T
    np.fill_diagonal(sims, -1)
    return [[(float(sims[i, j]), int(j)) for j in np.argsort(-sims[i])[:20]] for i in range(len(docs))]


def _day(a: dict) -> datetime:
    return datetime.fromisoformat(a["published_at"])


def build(corpus: list[dict]) -> list[dict]:
    """The set's records (see the module docstring)."""
    rng = random.Random(SEED)
    usable = [i for i, a in enumerate(corpus) if len(_paragraphs(a["body"])) >= 4 and len(a["body"]) > 1500]
    neighbours = _tfidf_neighbours(corpus)
    stories = rng.sample(usable, N_STORIES)
    records: list[dict] = []
    in_set: set[int] = set()

    def original(i: int, story: str) -> None:
        if i in in_set:
            return
        in_set.add(i)
        a = corpus[i]
        records.append({"id": f"o{i:04d}", "role": "original", "story": story, "corpus_index": i,
                        "outlet": a["source"], "format": "html", "url": a["url"], "published_at": a["published_at"],
                        "title": a["title"], "edits": {}})

    for n, i in enumerate(stories):
        story = f"s{i:04d}"
        original(i, story)
        a = corpus[i]
        name, domain, fmt = OUTLETS[n % len(OUTLETS)]
        paras = _paragraphs(a["body"])
        heavy = n % 5 == 4  # a fifth: cut to 40%, more words changed, a paragraph moved
        if heavy:
            keep = max(2, int(len(paras) * 0.4))
        else:
            keep = len(paras) - rng.choice([0, 1, 2]) if rng.random() < 0.7 else max(3, int(len(paras) * 0.6))
        edits = {
            "level": "heavy" if heavy else "light",
            "headline": rng.choice(["same", "update", "prefix", "shorter"]),
            "keep_paragraphs": keep,
            "word_edits": rng.sample(range(len(WORD_EDITS)), 8 if heavy else 3),
            "max_word_edits": 15 if heavy else 6,
            "swap": heavy,
            "opening": rng.choice(["dateline", "local_intro", "none"]),
            "intro": rng.randrange(len(LOCAL_INTROS)),
            "credit": rng.randrange(len(CREDITS)),
        }
        when = _day(a) + timedelta(hours=rng.randint(0, 36))
        slug = re.sub(r"[^a-z0-9]+", "-", a["title"].lower()).strip("-")[:60]
        copy = {"id": f"c{i:04d}", "role": "copy", "story": story, "corpus_index": i, "outlet": name,
                "format": fmt, "url": f"https://{domain}/news/{slug}", "published_at": when.isoformat(),
                "title": _headline(a["title"], edits["headline"]), "edits": edits}
        records.append(copy)
        # The most similar other article within a week: a different story on the same event.
        for sim, j in neighbours[i]:
            if abs((_day(corpus[j]) - _day(a)).days) <= 7 and corpus[j]["url"] != a["url"]:
                original(j, f"s{j:04d}")
                copy["same_event_as"] = f"o{j:04d}"
                copy["same_event_similarity"] = round(sim, 3)
                break
    for r in records:
        r["sha256"] = hashlib.sha256(page(r, corpus).encode("utf-8")).hexdigest()[:16]
    return records


def _headline(title: str, how: str) -> str:
    if how == "update":
        return f"UPDATE 1-{title}"
    if how == "prefix":
        return f"Wire: {title}"
    if how == "shorter":
        words = title.split()
        return " ".join(words[: max(4, len(words) - 3)])
    return title


def _edited_body(a: dict, edits: dict) -> list[str]:
    paras = _paragraphs(a["body"])[: edits["keep_paragraphs"]]
    done = 0
    out = []
    for p in paras:
        for k in edits["word_edits"]:
            pattern, repl = WORD_EDITS[k]
            if done < edits.get("max_word_edits", 6) and re.search(pattern, p):
                p = re.sub(pattern, repl, p, count=1)
                done += 1
        out.append(p)
    if edits.get("swap") and len(out) >= 3:
        out[1], out[-1] = out[-1], out[1]  # an editor moves a paragraph up
    if edits["opening"] == "dateline":
        day = _day(a)
        out[0] = f"NEW YORK, {day:%b} {day.day} (Reuters) - {out[0]}"
    elif edits["opening"] == "local_intro":
        out.insert(0, LOCAL_INTROS[edits["intro"]])
    out.append(CREDITS[edits["credit"]])
    return out


def page(record: dict, corpus: list[dict]) -> str:
    """The page a reader would have saved for this record (HTML, or a page saved as text)."""
    a = corpus[record["corpus_index"]]
    paras = _paragraphs(a["body"]) if record["role"] == "original" else _edited_body(a, record["edits"])
    title, outlet, date = record["title"], record["outlet"], record["published_at"]
    if record["format"] == "html":
        body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paras)
        return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)} | {html.escape(outlet)}</title>'
                f'<meta property="og:site_name" content="{html.escape(outlet)}">'
                f'<meta property="article:published_time" content="{date}">'
                f'<link rel="canonical" href="{html.escape(record["url"])}"></head><body>'
                f'<header><nav><a href="/">Home</a> <a href="/news">News</a> <a href="/sport">Sport</a> Menu Search</nav></header>'
                f'<main><article><h1>{html.escape(title)}</h1><p class="byline">By {html.escape(outlet)} staff</p>'
                f"{body}</article><aside><h3>Most read</h3><ul><li><a href='/a'>Council approves budget</a></li>"
                f"<li><a href='/b'>Storm warning for the weekend</a></li></ul></aside></main>"
                f"<footer><p>Sign up to our newsletter.</p><p>© {date[:4]} {html.escape(outlet)}</p></footer></body></html>")
    day = datetime.fromisoformat(date)
    lines = ["Menu", "Search", f"| {outlet}", "", title, "", f"{outlet} — {day.day} {day:%B %Y}", "",
             "Share this article", ""]
    for p in paras:
        lines += [p, ""]
    lines += ["Advertisement", "", "Related stories", "", "Sign up to our newsletter for daily updates in your inbox.", "",
              f"© {day.year} {outlet}. All rights reserved."]
    return "\n".join(lines)


def materialize(records: list[dict], corpus: list[dict], folder: Path) -> list[Path]:
    """Write each record's page to ``folder`` (``<id>.html`` / ``<id>.txt``); checks the hashes."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in records:
        text = page(r, corpus)
        if hashlib.sha256(text.encode("utf-8")).hexdigest()[:16] != r["sha256"]:
            raise SystemExit(f"{r['id']}: the page differs from the one the set was built with")
        p = folder / f"{r['id']}.{r['format']}"
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths


# ---------------------------------------------------------------------------- measure


@dataclass
class Scores:
    precision: float
    recall: float
    predicted_pairs: int
    true_pairs: int
    same_event_grouped: int  # same-event (different story) pairs wrongly grouped
    recall_heavy: float  # recall on the heavily edited copies alone


def pair_scores(groups: dict[str, str], records: list[dict]) -> Scores:
    """Pairwise precision/recall of ``groups`` (record id -> predicted group key)."""
    from collections import defaultdict
    from itertools import combinations

    story = {r["id"]: r["story"] for r in records}
    by_group: defaultdict[str, list[str]] = defaultdict(list)
    for rid, g in groups.items():
        by_group[g].append(rid)
    predicted = {frozenset(p) for ids in by_group.values() for p in combinations(sorted(ids), 2)}
    true = {frozenset((r["id"], f"o{r['corpus_index']:04d}")) for r in records if r["role"] == "copy"}
    tp = len(predicted & true)
    same_event = {frozenset((r["id"], r["same_event_as"])) for r in records if r.get("same_event_as")}
    same_event |= {frozenset((f"o{r['corpus_index']:04d}", r["same_event_as"])) for r in records if r.get("same_event_as")}
    wrong_event = sum(1 for p in predicted if p in same_event and len({story[x] for x in p}) > 1)
    heavy = {frozenset((r["id"], f"o{r['corpus_index']:04d}")) for r in records
             if r["role"] == "copy" and r["edits"].get("level") == "heavy"}
    return Scores(tp / len(predicted) if predicted else 1.0, tp / len(true) if true else 1.0, len(predicted), len(true),
                  wrong_event, len(predicted & heavy) / len(heavy) if heavy else 1.0)


def measure(records: list[dict], corpus: list[dict], work: Path) -> dict:
    """P/R of MinHash (the ingest's grouping) and of embedding similarity, at several thresholds."""
    import numpy as np

    from rag.ingest.curation import group_wire_copies
    from rag.ingest.readers import load_file
    from rag.settings import Settings

    paths = materialize(records, corpus, work / "pages")
    settings = Settings().model_copy(update={"index_dir": work / "index"})
    articles, ids = [], []
    order = sorted(range(len(records)), key=lambda k: (records[k]["published_at"], records[k]["id"]))
    for k in order:  # ingested in publication order, as a feed reader would
        res = load_file(paths[k], settings)
        if not res.articles:
            raise SystemExit(f"{paths[k]}: {res.problems}")
        articles.append(res.articles[0])
        ids.append(records[k]["id"])
    dated = sum(a.has_real_date for a in articles)
    out: dict = {"pages": len(articles), "with_real_date": dated, "minhash": {}, "embedding": {}}
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        s = settings.model_copy(update={"wire_containment": threshold})
        grouped = group_wire_copies(articles, s, root=None)
        out["minhash"][threshold] = pair_scores({rid: a.group for rid, a in zip(ids, grouped)}, records).__dict__

    from rag.embed.factory import create_embedder

    embedder = create_embedder(settings)
    vecs = []
    for a in articles:
        v = embedder.embed([a.title + "\n" + a.text[:4000]])[0]
        vecs.append(v / (np.linalg.norm(v) + 1e-9))
    vecs = np.array(vecs)
    sims = vecs @ vecs.T
    days = np.array([datetime.fromisoformat(a.published_at.replace("Z", "+00:00")).timestamp() / 86400 for a in articles])
    window = settings.wire_window_days
    for threshold in (0.80, 0.85, 0.90, 0.93, 0.95, 0.97):
        group = list(range(len(articles)))
        for i in range(len(articles)):
            cands = [j for j in range(i) if sims[i, j] >= threshold and abs(days[i] - days[j]) <= window]
            if cands:
                group[i] = group[max(cands, key=lambda j: sims[i, j])]
        out["embedding"][threshold] = pair_scores({rid: str(g) for rid, g in zip(ids, group)}, records).__dict__
    return out


def main(argv: list[str] | None = None) -> int:
    from rag.runtime import configure_logging, configure_process

    configure_process()
    p = argparse.ArgumentParser(prog="python -m eval.wire_set", description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["build", "measure"])
    p.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    p.add_argument("--set", default=str(DEFAULT_SET))
    p.add_argument("--work", default="/tmp/wire-set", help="measure: where the pages and scratch files go")
    args = p.parse_args(argv)
    configure_logging(quiet=True)
    corpus = json.loads(Path(args.corpus).read_text(encoding="utf-8"))
    if args.action == "build":
        records = build(corpus)
        Path(args.set).parent.mkdir(parents=True, exist_ok=True)
        Path(args.set).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        copies = sum(r["role"] == "copy" for r in records)
        print(f"{len(records)} pages: {copies} copies, {len(records) - copies} originals; written to {args.set}")
        return 0
    records = [json.loads(line) for line in Path(args.set).read_text(encoding="utf-8").splitlines() if line.strip()]
    result = measure(records, corpus, Path(args.work))
    print(f"{result['pages']} pages ({result['with_real_date']} with a real date)")
    print(f"{'method':<10} {'threshold':>9} {'precision':>9} {'recall':>7} {'recall(heavy)':>13} {'pairs':>6} "
          f"{'same-event grouped':>19}")
    for method in ("minhash", "embedding"):
        for t, s in result[method].items():
            print(f"{method:<10} {t:>9} {s['precision']:>9.3f} {s['recall']:>7.3f} {s['recall_heavy']:>13.3f} "
                  f"{s['predicted_pairs']:>6} {s['same_event_grouped']:>19}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
