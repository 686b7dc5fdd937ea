"""The conversation store: a real SQLite file, scoped per owner, answers read back whole."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from rag.conversations import (
    ConversationError, ConversationStore, Exchange, default_path, history, title_from_question,
)
from rag.settings import Settings
from rag.types import Answer, Citation, ConflictingValue, RelatedPassage, ShortAnswer, Turn


def make_answer(question: str = "Where will they meet?", query: str | None = None) -> Answer:
    cites = [
        Citation(1, "a1", "Summit set", "BBC", "https://example.com/a", "2025-10-17", "They meet in Budapest.", 10, 32,
                 4, 0, 60),
        Citation(2, "a2", "Talks", None, None, None, "The summit is in Hungary.", 0, 25),
    ]
    return Answer(
        question=question, query=query or question, answer="They meet in Budapest. [1] The summit is in Hungary. [2]",
        citations=cites, abstained=False,
        related=[RelatedPassage(1, 0.9, "a1", "Summit set", "BBC", None, None, "They meet in Budapest.", 0, 60, 4)],
        timings={"total_ms": 12.3456}, conflict=True,
        short_answer=ShortAnswer("Budapest", 1, 24, 32, "place"),
        conflicting=[ConflictingValue("Budapest", [1], ["BBC"], "2025-10-17"), ConflictingValue("Hungary", [2], ["Talks"])],
    )


@pytest.fixture
def store(tmp_path):
    return ConversationStore(tmp_path / "conv.sqlite3")


def test_an_answer_is_read_back_as_it_was_saved(store):
    answer = make_answer(query="Where will Trump and Putin meet?")
    conv = store.create("anon:A", title_from_question(answer.question))
    store.add_exchange("anon:A", conv.conversation_id, answer.question, answer, filters={"sources": ["BBC"]})
    (ex,) = store.exchanges("anon:A", conv.conversation_id)
    assert ex.status == "answered" and ex.filters == {"sources": ["BBC"]}
    assert ex.answer.to_dict() == answer.to_dict()
    assert ex.answer.short_answer == ShortAnswer("Budapest", 1, 24, 32, "place")
    assert ex.answer.conflicting[1] == ConflictingValue("Hungary", [2], ["Talks"])
    assert history([ex]) == [Turn(answer.question, answer.answer, "Where will Trump and Putin meet?", "Budapest")]


def test_owners_never_see_each_others_conversations(store):
    mine = store.create("anon:A", "mine")
    store.add_exchange("anon:A", mine.conversation_id, "q", make_answer())
    theirs = store.create("anon:B", "theirs")
    assert [c.title for c in store.conversations("anon:A")] == ["mine"]
    assert [c.title for c in store.conversations("anon:B")] == ["theirs"]
    # Knowing the id is not enough: every call checks the owner.
    for call in (lambda: store.exchanges("anon:B", mine.conversation_id),
                 lambda: store.rename("anon:B", mine.conversation_id, "stolen"),
                 lambda: store.delete("anon:B", mine.conversation_id),
                 lambda: store.add_exchange("anon:B", mine.conversation_id, "q", make_answer()),
                 lambda: store.delete_last_exchange("anon:B", mine.conversation_id)):
        with pytest.raises(ConversationError):
            call()
    assert store.get("anon:A", mine.conversation_id).title == "mine"
    assert len(store.exchanges("anon:A", mine.conversation_id)) == 1
    assert store.get("anon:B", theirs.conversation_id).exchanges == 0


def test_list_rename_delete_and_replace_the_last_exchange(store):
    first = store.create("user:ann", "first")
    second = store.create("user:ann", "second")
    store.add_exchange("user:ann", first.conversation_id, "q1", make_answer("q1"))
    # The most recently used comes first.
    assert [c.title for c in store.conversations("user:ann")] == ["first", "second"]
    assert store.rename("user:ann", second.conversation_id, "  renamed\n twice ").title == "renamed twice"
    with pytest.raises(ConversationError, match="empty"):
        store.rename("user:ann", second.conversation_id, "   ")

    store.add_exchange("user:ann", first.conversation_id, "q2", partial="half an ans")
    dropped = store.delete_last_exchange("user:ann", first.conversation_id)
    assert dropped.question == "q2" and dropped.status == "stopped" and dropped.partial == "half an ans"
    assert [e.question for e in store.exchanges("user:ann", first.conversation_id)] == ["q1"]

    store.delete("user:ann", first.conversation_id)
    assert [c.title for c in store.conversations("user:ann")] == ["renamed twice"]
    with pytest.raises(ConversationError, match="does not exist"):
        store.exchanges("user:ann", first.conversation_id)
    # Its exchanges went with it (foreign key cascade).
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0] == 0


def test_write_ahead_log_and_many_threads_writing_at_once(store):
    conv = store.create("anon:A", "busy")
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for j in range(10):
                store.add_exchange("anon:A", conv.conversation_id, f"q{i}-{j}", make_answer())
                store.conversations("anon:A")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.exchanges("anon:A", conv.conversation_id)) == 60
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_second_store_on_the_same_file_sees_the_same_conversations(store):
    conv = store.create("anon:A", "shared file")
    other = ConversationStore(store.path)  # e.g. the HTTP API in the same process, or after a restart
    assert [c.conversation_id for c in other.conversations("anon:A")] == [conv.conversation_id]


def test_unusable_file_and_missing_owner_are_clear_errors(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConversationError, match="cannot be used"):
        ConversationStore(blocker / "conv.sqlite3").conversations("anon:A")
    with pytest.raises(ConversationError, match="owner"):
        ConversationStore(tmp_path / "c.sqlite3").conversations("")
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConversationError):
        ConversationStore(garbage).conversations("anon:A")


def test_an_unreadable_stored_answer_keeps_the_question(store):
    conv = store.create("anon:A", "old")
    store.add_exchange("anon:A", conv.conversation_id, "q", make_answer())
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE exchanges SET answer = '{\"question\": 1}'")
    (ex,) = store.exchanges("anon:A", conv.conversation_id)
    assert isinstance(ex, Exchange) and ex.question == "q" and ex.answer is None and "could not be read" in ex.partial


def test_default_path_is_beside_the_index(tmp_path):
    s = Settings().model_copy(update={"index_dir": tmp_path / "index"})
    assert default_path(s) == tmp_path / "index" / "conversations.sqlite3"
    s2 = s.model_copy(update={"conversations_db": tmp_path / "elsewhere.db"})
    assert default_path(s2) == tmp_path / "elsewhere.db"


def test_titles_are_one_short_line():
    assert title_from_question("  Where\nwill   they meet? ") == "Where will they meet?"
    long = title_from_question("word " * 40)
    assert len(long) <= 80 and long.endswith("…")
