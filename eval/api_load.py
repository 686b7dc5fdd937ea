"""The HTTP API under concurrent clients: errors, conversations kept apart, p50/p95 per endpoint.

``clients`` threads start together, each with its own HTTP connection and its own
conversation of ``questions`` seed questions (follow-ups right after the question
they follow), sent with the history the client keeps. The clients take turns over
four ways in: ``POST /api/v1/ask`` (history as turns), the same streamed (history
as chat messages), and ``POST /v1/chat/completions`` through the real ``openai``
client, plain and streamed. After each answer the client also runs ``GET
/api/v1/search`` for its question. While they run, one upload (``POST
/api/v1/articles``) adds an article.

    python -m eval.api_load                     # starts `python -m server` on a temp index of seeds/
    python -m eval.api_load --index DIR         # ... on a copy of an existing index folder
    python -m eval.api_load --url http://127.0.0.1:7860/ [--key KEY]   # a server already running

Prints p50/p95 per endpoint (and to the first streamed text), and writes a JSON report.
With ``--check``, every conversation is first run alone (one client), and each
answer under load must match it: the same text and the same cited spans.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from eval.server_process import local_server

ROOT = Path(__file__).resolve().parent.parent
SEED_QUESTIONS = ROOT / "eval" / "questions" / "seeds.jsonl"
KINDS = ("ask", "ask-stream", "chat", "chat-stream")
ENDPOINTS = {
    "ask": "POST /api/v1/ask",
    "ask-stream": "POST /api/v1/ask (stream)",
    "chat": "POST /v1/chat/completions",
    "chat-stream": "POST /v1/chat/completions (stream)",
    "search": "GET /api/v1/search",
    "upload": "POST /api/v1/articles",
}
MODEL = "article-rag"
# The article uploaded during the run: a topic no seed question touches.
UPLOAD_NAME = "quillbrook-footbridge.txt"
UPLOAD_TEXT = ("Quillbrook Falls opened a footbridge over the river on Tuesday, the town council said. "
               "The bridge cost 1.2 million euros and took eight months to build. Cyclists and walkers "
               "can now cross without the detour through the old mill district.\n")


@dataclass
class Reply:
    """One answer as a client saw it."""

    question: str
    text: str
    cited: list[tuple[str, int, int]]  # (article_id, start, end) of each citation, in order
    query: str | None = None  # the standalone question (REST only)

    def same(self, other: "Reply") -> bool:
        return self.text == other.text and self.cited == other.cited


@dataclass
class Sample:
    endpoint: str
    ms: float
    first_ms: float | None = None  # to the first streamed answer text
    error: str | None = None


@dataclass
class LoadRun:
    conversations: list[list[str]]
    kinds: list[str]
    replies: list[list[Reply]]
    samples: list[Sample] = field(default_factory=list)
    upload: dict | None = None
    wall_s: float = 0.0

    @property
    def errors(self) -> list[Sample]:
        return [s for s in self.samples if s.error]


def conversations(n: int, per: int, path: Path = SEED_QUESTIONS) -> list[list[str]]:
    """``n`` conversations of ``per`` questions: a chain of follow-ups in each, the rest standalone
    questions, each conversation a different mix."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_id = {r["id"]: r for r in rows}
    chains: list[list[str]] = []
    for r in rows:
        if r.get("type") == "followup" and r.get("follows") in by_id:
            parent = by_id[r["follows"]]["question"]
            for chain in chains:
                if chain[-1] == parent:
                    chain.append(r["question"])
                    break
            else:
                chains.append([parent, r["question"]])
    in_chains = {q for c in chains for q in c}
    singles = [r["question"] for r in rows if r.get("answerable", True) and r["question"] not in in_chains
               and r.get("type") != "followup"]
    out = []
    for i in range(n):
        chain = chains[i % len(chains)][:per]
        fill = [singles[(i * 7 + j) % len(singles)] for j in range(per - len(chain))]
        cut = i % (len(fill) + 1)
        out.append(fill[:cut] + chain + fill[cut:])
    return out


def iter_sse(lines: Iterator[str]) -> Iterator[tuple[str | None, str]]:
    """``(event, data)`` of each Server-Sent Event."""
    event, data = None, []
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        yield event, "\n".join(data)


class Client:
    """One API client: its own HTTP connection (httpx) and its own ``openai`` client."""

    def __init__(self, url: str, key: str | None = None, timeout_s: float = 300):
        import httpx
        from openai import OpenAI

        base = url.rstrip("/")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=base, headers=headers, timeout=timeout_s)
        self.openai = OpenAI(base_url=base + "/v1", api_key=key or "none", max_retries=0, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()
        self.openai.close()

    def ask(self, kind: str, question: str, history: list[tuple[str, str]]) -> tuple[Reply, Sample]:
        t0 = time.perf_counter()
        first = None
        if kind == "ask":
            r = self.http.post("/api/v1/ask", json={"question": question,
                                                    "history": [{"question": q, "answer": a} for q, a in history]})
            _raise_for(r)
            reply = _rest_reply(r.json())
        elif kind == "ask-stream":
            body = {"question": question, "history": _messages(history), "stream": True}
            done = None
            with self.http.stream("POST", "/api/v1/ask", json=body) as r:
                _raise_for(r)
                for event, data in iter_sse(r.iter_lines()):
                    if event == "text" and first is None:
                        first = time.perf_counter()
                    elif event == "error":
                        raise RuntimeError(f"error event: {data}")
                    elif event == "done":
                        done = json.loads(data)
            if done is None:
                raise RuntimeError("the stream ended without a done event")
            reply = _rest_reply(done)
        else:
            messages = _messages(history) + [{"role": "user", "content": question}]
            if kind == "chat":
                c = self.openai.chat.completions.create(model=MODEL, messages=messages)
                cites = (c.model_extra or {}).get("citations")
                reply = Reply(question, c.choices[0].message.content or "", _cited(cites))
            else:
                parts, cites = [], None
                for chunk in self.openai.chat.completions.create(model=MODEL, messages=messages, stream=True):
                    delta = chunk.choices[0].delta.content if chunk.choices else None
                    if delta:
                        first = first or time.perf_counter()
                        parts.append(delta)
                    cites = (chunk.model_extra or {}).get("citations", cites)
                if cites is None:
                    raise RuntimeError("no citations on the final chunk")
                reply = Reply(question, "".join(parts), _cited(cites))
        t1 = time.perf_counter()
        return reply, Sample(ENDPOINTS[kind], (t1 - t0) * 1000, None if first is None else (first - t0) * 1000)

    def search(self, question: str) -> Sample:
        t0 = time.perf_counter()
        r = self.http.get("/api/v1/search", params={"q": question, "k": 10})
        _raise_for(r)
        if not isinstance(r.json().get("hits"), list):
            raise RuntimeError("no hits list")
        return Sample(ENDPOINTS["search"], (time.perf_counter() - t0) * 1000)

    def upload(self, name: str, data: bytes) -> tuple[dict, Sample]:
        t0 = time.perf_counter()
        r = self.http.post("/api/v1/articles", files=[("files", (name, data, "text/plain"))])
        _raise_for(r)
        return r.json(), Sample(ENDPOINTS["upload"], (time.perf_counter() - t0) * 1000)


def _raise_for(r) -> None:
    if r.status_code != 200:
        r.read()
        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")


def _messages(history: list[tuple[str, str]]) -> list[dict]:
    out: list[dict] = []
    for q, a in history:
        out += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return out


def _cited(citations) -> list[tuple[str, int, int]]:
    return [(c["article_id"], int(c["start"]), int(c["end"])) for c in citations or []]


def _rest_reply(d: dict) -> Reply:
    return Reply(d["question"], d["answer"], _cited(d["citations"]), d.get("query"))


def converse(url: str, key: str | None, kind: str, questions: list[str], *, search: bool = True,
             start: threading.Barrier | None = None, answered: threading.Semaphore | None = None,
             ) -> tuple[list[Reply], list[Sample]]:
    """One client's conversation: each question with the history so far (a failed answer leaves a gap)."""
    client = Client(url, key)
    replies: list[Reply] = []
    samples: list[Sample] = []
    history: list[tuple[str, str]] = []
    try:
        if start is not None:
            start.wait()
        for q in questions:
            try:
                reply, sample = client.ask(kind, q, history)
                replies.append(reply)
                samples.append(sample)
                history.append((q, reply.text))
            except Exception as exc:  # noqa: BLE001 - counted, and the run goes on
                samples.append(Sample(ENDPOINTS[kind], 0.0, error=f"{type(exc).__name__}: {exc}"))
                replies.append(Reply(q, "", []))
                history.append((q, ""))
            if answered is not None:
                answered.release()
            if search:
                try:
                    samples.append(client.search(q))
                except Exception as exc:  # noqa: BLE001
                    samples.append(Sample(ENDPOINTS["search"], 0.0, error=f"{type(exc).__name__}: {exc}"))
    finally:
        client.close()
    return replies, samples


def run_load(url: str, *, key: str | None = None, clients: int = 20, per_client: int = 5,
             upload: tuple[str, bytes] | None = (UPLOAD_NAME, UPLOAD_TEXT.encode()),
             upload_after: int = 10, deadline_s: float = 900) -> LoadRun:
    """All clients at once, and the upload once ``upload_after`` answers are in.

    Bounded: ``clients * per_client`` questions, and a run past ``deadline_s`` is an error.
    """
    convs = conversations(clients, per_client)
    kinds = [KINDS[i % len(KINDS)] for i in range(clients)]
    run = LoadRun(convs, kinds, [[] for _ in convs])
    start = threading.Barrier(clients + (1 if upload else 0))
    answered = threading.Semaphore(0)

    def do_upload():
        start.wait()
        for _ in range(upload_after):
            answered.acquire()
        client = Client(url, key)
        try:
            report, sample = client.upload(*upload)
            run.upload = report
            run.samples.append(sample)
        except Exception as exc:  # noqa: BLE001
            run.samples.append(Sample(ENDPOINTS["upload"], 0.0, error=f"{type(exc).__name__}: {exc}"))
        finally:
            client.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients + 1) as pool:
        futures = {pool.submit(converse, url, key, kind, qs, start=start, answered=answered): i
                   for i, (kind, qs) in enumerate(zip(kinds, convs))}
        up = pool.submit(do_upload) if upload else None
        done, pending = wait([*futures, *([up] if up else [])], timeout=deadline_s)
        if pending:
            raise TimeoutError(f"{len(pending)} clients still running after {deadline_s:g} s")
        for f, i in futures.items():
            run.replies[i], samples = f.result()
            run.samples.extend(samples)
        if up is not None:
            up.result()
    run.wall_s = time.perf_counter() - t0
    return run


def alone(url: str, key: str | None, kinds: list[str], convs: list[list[str]]) -> list[list[Reply]]:
    """Each conversation on its own, one after another: what each client should see under load."""
    out = []
    for kind, qs in zip(kinds, convs):
        replies, samples = converse(url, key, kind, qs, search=False)
        errors = [s.error for s in samples if s.error]
        if errors:
            raise RuntimeError(f"a lone conversation failed: {errors[0]}")
        out.append(replies)
    return out


def mismatches(run: LoadRun, expected: list[list[Reply]]) -> list[tuple[int, int]]:
    """``(client, question)`` of each answer under load that differs from the conversation run alone."""
    return [(c, j) for c, (got, want) in enumerate(zip(run.replies, expected))
            for j, (g, w) in enumerate(zip(got, want)) if not g.same(w)]


def unexplained(run: LoadRun, expected: list[list[Reply]], url: str, key: str | None = None) -> list[tuple[int, int]]:
    """The mismatches the upload does not explain.

    An answer may differ from its conversation run alone before the load only if the
    upload, committed mid-run, changed what it retrieved: then it equals the
    conversation run alone now, on the index with the upload.
    """
    differ = mismatches(run, expected)
    now = {c: alone(url, key, [run.kinds[c]], [run.conversations[c]])[0] for c in {c for c, _ in differ}}
    return [(c, j) for c, j in differ if not run.replies[c][j].same(now[c][j])]


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile, linear between the nearest ranks (as numpy's default)."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * p / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def latency_table(samples: list[Sample]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for endpoint in ENDPOINTS.values():
        ok = [s for s in samples if s.endpoint == endpoint and not s.error]
        if not ok:
            continue
        ms = [s.ms for s in ok]
        row = {"n": len(ok), "p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1),
               "max_ms": round(max(ms), 1)}
        firsts = [s.first_ms for s in ok if s.first_ms is not None]
        if firsts:
            row["first_text_p50_ms"] = round(percentile(firsts, 50), 1)
            row["first_text_p95_ms"] = round(percentile(firsts, 95), 1)
        out[endpoint] = row
    return out


def print_table(table: dict[str, dict]) -> None:
    print(f"{'endpoint':38s} {'n':>4s} {'p50 ms':>9s} {'p95 ms':>9s} {'max ms':>9s}   first text p50 / p95 ms")
    for endpoint, r in table.items():
        first = (f"   {r['first_text_p50_ms']:.1f} / {r['first_text_p95_ms']:.1f}"
                 if "first_text_p50_ms" in r else "")
        print(f"{endpoint:38s} {r['n']:4d} {r['p50_ms']:9.1f} {r['p95_ms']:9.1f} {r['max_ms']:9.1f}{first}")


# -- the server -------------------------------------------------------------------------
def wait_ready(url: str, proc: subprocess.Popen | None = None, key: str | None = None, timeout_s: float = 600) -> None:
    """Until ``GET /api/v1/health`` says ok (the index is loaded)."""
    deadline = time.monotonic() + timeout_s
    req = urllib.request.Request(url.rstrip("/") + "/api/v1/health",
                                 headers={"Authorization": f"Bearer {key}"} if key else {})
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                if json.load(r).get("status") == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} was not ready within {timeout_s:.0f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a server already running (else `python -m server` is started)")
    ap.add_argument("--key", help="API key for --url (default $RAG_API_KEY)", default=os.environ.get("RAG_API_KEY"))
    ap.add_argument("--index", help="index folder to copy for the started server (default: seeds/ indexed)")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--questions", type=int, default=5, help="questions per client")
    ap.add_argument("--check", action="store_true", help="also run each conversation alone and compare")
    ap.add_argument("--out", default=str(ROOT / "eval" / "out" / "api_load.json"))
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="api-load-"))
    url = args.url
    try:
        with contextlib.ExitStack() as stack:
            proc = None
            if not url:
                index = tmp / "index"
                if args.index:
                    shutil.copytree(args.index, index)
                url, proc = stack.enter_context(local_server(index, tmp / "server.log",
                                                             drop=("RAG_API_KEYS", "RAG_AUTH")))
            wait_ready(url, proc, args.key)
            convs = conversations(args.clients, args.questions)
            kinds = [KINDS[i % len(KINDS)] for i in range(args.clients)]
            expected = alone(url, args.key, kinds, convs) if args.check else None
            run = run_load(url, key=args.key, clients=args.clients, per_client=args.questions)
            differ = mismatches(run, expected) if expected is not None else []
            unexplained_ = unexplained(run, expected, url, args.key) if expected is not None else []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    table = latency_table(run.samples)
    report = {"url": url, "clients": args.clients, "questions_per_client": args.questions,
              "wall_s": round(run.wall_s, 1), "errors": [asdict(s) for s in run.errors],
              "upload": run.upload, "cpu_count": os.cpu_count(), "latency": table}
    if expected is not None:
        report.update(mismatches=differ, unexplained=unexplained_)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    checked = (f"; {len(differ)} answers differ from the conversation run alone, {len(unexplained_)} not "
               "explained by the upload" if expected is not None else "")
    print(f"{args.clients} clients x {args.questions} questions and 1 upload in {run.wall_s:.1f} s; "
          f"{len(run.errors)} errors{checked}")
    print_table(table)
    print(f"(report in {out})")
    return 1 if run.errors or unexplained_ else 0


if __name__ == "__main__":
    sys.exit(main())
