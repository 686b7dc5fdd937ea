"""The upload route indexes only files a client actually sent (issue: the upload hole).

A real `rag serve` process on 127.0.0.1, driven over HTTP: by Gradio's own client
(which uploads the bytes of a file on the client's disk first) and by raw event
calls that name a server path without uploading it, the way a hostile client would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.servers import rag_serve

SECRET = "The vault combination of the Zorbalian quartermaster is 7-7-3-1, noted privately on the server."


@pytest.fixture(scope="module")
def app_server(tmp_path_factory, seed_engine):
    tmp = tmp_path_factory.mktemp("upload-hole")
    index = tmp / "index"
    shutil.copytree(seed_engine.index_dir, index)
    uploads = tmp / "gradio-uploads"
    uploads.mkdir()
    private = tmp / "srv-private"
    private.mkdir()
    (private / "notes.txt").write_text(SECRET + "\n", encoding="utf-8")
    with rag_serve(tmp, index, env={"GRADIO_TEMP_DIR": str(uploads)}) as srv:
        yield {**srv, "index": index, "private": private, "uploads": uploads}


def _article_titles(index: Path) -> list[str]:
    from rag.store.snapshot import open_index

    snap = open_index(index)
    try:
        return [a.title for a in snap.articles()]
    finally:
        snap.close()


def _call_upload(url: str, paths: list[str]) -> str:
    """A raw event call naming server paths, without uploading anything first."""
    files = [{"path": p, "meta": {"_type": "gradio.FileData"}} for p in paths]
    r = httpx.post(f"{url}gradio_api/call/upload", json={"data": [files]}, timeout=30)
    r.raise_for_status()
    event_id = r.json()["event_id"]
    with httpx.stream("GET", f"{url}gradio_api/call/upload/{event_id}", timeout=120) as s:
        return "\n".join(s.iter_lines())


def test_a_named_server_path_is_never_indexed(app_server):
    before = _article_titles(app_server["index"])
    secret = str(app_server["private"] / "notes.txt")
    sneaky = str(app_server["uploads"] / ".." / "srv-private" / "notes.txt")
    for attempt in ([secret], [sneaky]):
        out = _call_upload(app_server["url"], attempt)
        assert "added" not in out
    assert _article_titles(app_server["index"]) == before
    assert not any("Zorbalian" in t for t in _article_titles(app_server["index"]))


def test_a_file_the_client_uploads_is_indexed(app_server, tmp_path):
    from gradio_client import Client, handle_file

    mine = tmp_path / "client-side.txt"
    mine.write_text("Quillbrook Falls opened a footbridge over the river on Tuesday, the town council said. "
                    "The bridge cost 1.2 million euros and took eight months to build.\n", encoding="utf-8")
    client = Client(app_server["url"], verbose=False)
    report = client.predict([handle_file(str(mine))], api_name="/upload")[0]
    assert "added" in report and "Quillbrook" in report
    assert any("Quillbrook" in t for t in _article_titles(app_server["index"]))


def test_handler_refuses_paths_outside_the_upload_folder(tmp_path, monkeypatch):
    """The app's own check, on real files: outside, via `..`, via a symlink, missing."""
    pytest.importorskip("gradio")
    uploads = tmp_path / "uploads"
    (uploads / "abc").mkdir(parents=True)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    from ui.app import uploaded_files

    inside = uploads / "abc" / "ok.txt"
    inside.write_text("fine", encoding="utf-8")
    outside = tmp_path / "secret.txt"
    outside.write_text(SECRET, encoding="utf-8")
    link = uploads / "abc" / "link.txt"
    link.symlink_to(outside)
    paths, refused = uploaded_files([str(inside), str(outside), str(uploads / ".." / "secret.txt"), str(link),
                                     str(uploads / "abc" / "missing.txt"), str(uploads)])
    assert paths == [str(inside.resolve())]
    assert len(refused) == 5
    assert all(r.status == "rejected" and "uploaded" in r.reason for r in refused)


def test_a_bad_file_uploaded_beside_a_good_one_costs_only_itself(app_server, tmp_path):
    from gradio_client import Client, handle_file

    good = tmp_path / "riverside.txt"
    good.write_text("Riverside opened a new public library on Monday, the town said. It holds 40,000 books "
                    "and was paid for by a local fund.\n", encoding="utf-8")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 1000 + "]" * 1000)
    report = Client(app_server["url"], verbose=False).predict([handle_file(str(good)), handle_file(str(deep))],
                                                              api_name="/upload")[0]
    assert "added" in report and "Riverside" in report
    assert "deep.json" in report and "nested too deeply" in report
    assert any("Riverside" in t for t in _article_titles(app_server["index"]))
