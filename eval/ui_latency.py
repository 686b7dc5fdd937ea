"""Browser-side latency of the chat: Enter -> first streamed text, and -> complete answer.

Drives the real app in headless Chromium (same setup as tests/test_ui_browser.py) and
times each question inside the page (``performance.now()`` at the Enter keydown, then
a MutationObserver on the chat), so the numbers include the network round trips,
Gradio's queue and the rendering, not just the engine.

    python -m eval.ui_latency                      # starts `rag serve` on a temp index of seeds/
    python -m eval.ui_latency --index index        # ... on an existing index folder
    python -m eval.ui_latency --url http://127.0.0.1:7860/   # an app already running
    RAG_LLM_MODEL_PATH=model.gguf python -m eval.ui_latency --answer-mode llamacpp   # streamed LLM answers

The questions are the first ``-n`` of the question set, asked in order in one
conversation (so follow-ups follow their question). Writes a JSON report to --out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from eval.server_process import local_server

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]

# Installed once per page: records Enter keydown and the answer bubble's first text / final form.
RECORDER_JS = """
(n) => {
  const lat = window.__lat = {t0: null, first: null, done: null, error: false, n};
  const ta = document.querySelector('#question textarea');
  if (!window.__latKey) {
    window.__latKey = true;
    ta.addEventListener('keydown', e => {
      if (e.key === 'Enter' && window.__lat && window.__lat.t0 === null) window.__lat.t0 = performance.now();
    }, true);
  }
  // A failed question's exchange is replaced by the next one's.
  document.querySelectorAll('#chatbot .exchange.pending-q').forEach(e => e.dataset.stale = '1');
  const area = document.querySelector('#chat-scroll');
  const check = () => {
    const now = performance.now();
    // First text: the answer being written (#live, with its cursor), or the answer itself.
    const ex = document.querySelectorAll('#chatbot .exchange:not([data-stale])')[lat.n];
    const final = ex && ex.querySelector('[data-testid=bot] :is(.answer, .abstain, .chat-error, .stopped)');
    if (lat.first === null && (document.querySelector('#live .cursor') || final)) lat.first = now;
    if (lat.done === null && final) {
      lat.done = now;
      lat.error = final.matches('.chat-error');
      obs.disconnect();
    }
  };
  const obs = new MutationObserver(check);
  obs.observe(area, {subtree: true, childList: true, characterData: true});
}
"""


def _wait_http(url: str, proc: subprocess.Popen | None, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"rag serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def _questions(path: Path, n: int) -> list[str]:
    qs = [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return (qs * (n // max(len(qs), 1) + 1))[:n]


def _summary(values: list[float]) -> dict:
    return {"median_ms": round(statistics.median(values), 1), "max_ms": round(max(values), 1),
            "min_ms": round(min(values), 1), "mean_ms": round(statistics.fmean(values), 1)}


def measure(url: str, questions: list[str], timeout_ms: int = 120_000, answer_mode: str | None = None) -> list[dict]:
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="domcontentloaded")
        box = page.locator("#question textarea")
        box.wait_for()
        page.wait_for_function("() => /\\d+ articles ·/.test(document.querySelector('#status')?.innerText || '')",
                               timeout=600_000)
        if answer_mode:
            page.locator("#settings").click()
            page.locator(f'#answer-mode input[value="{answer_mode}"]').check()
        for i, q in enumerate(questions, 1):
            n = page.locator("#chatbot .exchange:not(.pending-q)").count()
            box.fill(q)
            page.evaluate(RECORDER_JS, n)
            box.press("Enter")
            page.wait_for_function("() => window.__lat.done !== null", timeout=timeout_ms)
            lat = page.evaluate("() => window.__lat")
            row = {"question": q, "first_text_ms": round(lat["first"] - lat["t0"], 1),
                   "complete_ms": round(lat["done"] - lat["t0"], 1), "error": lat["error"]}
            rows.append(row)
            print(f"{i:2d}  first {row['first_text_ms']:8.1f} ms  complete {row['complete_ms']:8.1f} ms"
                  f"{'  ERROR' if row['error'] else ''}  {q}", flush=True)
        browser.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="an app already running (else `rag serve` is started)")
    ap.add_argument("--index", help="index folder for the started server (default: a temp folder, seeds/ indexed)")
    ap.add_argument("-n", type=int, default=20, help="questions to ask (default 20)")
    ap.add_argument("--questions", default=str(ROOT / "eval" / "questions" / "seeds.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "eval" / "out" / "ui_latency.json"))
    ap.add_argument("--answer-mode", help="answer mode to pick in the page's settings (e.g. llamacpp)")
    args = ap.parse_args(argv)

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    url = args.url
    with contextlib.ExitStack() as stack:
        proc = None
        if not url:
            tmp = Path(tempfile.mkdtemp(prefix="ui-latency-"))
            index = args.index or str(tmp / "index")
            url, proc = stack.enter_context(local_server(index, tmp / "ui-latency-server.log"))
        _wait_http(url, proc)
        rows = measure(url, _questions(Path(args.questions), args.n), answer_mode=args.answer_mode)
    report = {
        "url": url, "answer_mode": args.answer_mode or "default", "questions": len(rows), "errors": sum(r["error"] for r in rows),
        "first_text": _summary([r["first_text_ms"] for r in rows]),
        "complete": _summary([r["complete_ms"] for r in rows]),
        "cpu_count": os.cpu_count(), "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\nEnter -> first streamed text: median {report['first_text']['median_ms']} ms, max {report['first_text']['max_ms']} ms")
    print(f"Enter -> complete answer:     median {report['complete']['median_ms']} ms, max {report['complete']['max_ms']} ms")
    print(f"({len(rows)} questions, {report['errors']} errors; report in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
