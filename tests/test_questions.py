"""Question-set loading: each format, and each malformed case names its location."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from eval.question_sets import Evidence, Question, load_questions
from rag.errors import QuestionSetError

from .conftest import MULTIHOP

MULTIHOP_DEV = MULTIHOP / "queries_dev.json"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(tmp_path: Path, *records: object, name: str = "set.jsonl") -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return _write(tmp_path, name, "\n".join(lines) + "\n")


def _raises(path: Path, *fragments: str) -> str:
    with pytest.raises(QuestionSetError) as info:
        load_questions(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


GOOD = {
    "id": "q1",
    "question": "Who will meet in Budapest?",
    "answers": ["Trump and Putin"],
    "evidence": [{"quote": "agreed to meet in Budapest", "file": "seeds/001.txt"}],
    "answerable": True,
    "type": "fact",
}


# ----------------------------------------------------------------------------- formats


def test_jsonl_loads(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        GOOD,
        "",  # blank lines are allowed
        {"id": "q2", "question": "And when?", "answers": [], "answerable": False, "follows": "q1"},
        {"id": "q3", "question": "Which source?", "evidence": [{"quote": "x", "url": "https://e.x/a"}]},
    )
    q1, q2, q3 = load_questions(path)
    assert q1 == Question(
        id="q1",
        question="Who will meet in Budapest?",
        answers=("Trump and Putin",),
        evidence=(Evidence(quote="agreed to meet in Budapest", file="seeds/001.txt"),),
        answerable=True,
        type="fact",
    )
    assert (q2.answerable, q2.answers, q2.follows) == (False, (), "q1")
    # answerable defaults to True when there is evidence to check against.
    assert q3.answerable and q3.evidence[0].url == "https://e.x/a" and q3.answers == ()


def test_jsonl_keeps_unicode_line_separators_inside_strings(tmp_path: Path) -> None:
    record = {**GOOD, "question": "Who\u2028met?"}
    path = _write(tmp_path, "u.jsonl", json.dumps(record, ensure_ascii=False) + "\r\n")
    [q] = load_questions(path)
    assert q.question == "Who\u2028met?"


def test_jsonl_missing_id_gets_line_based_id(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        {"question": "Q?", "answers": ["a"]},
        {"id": 7, "question": "Q2?", "answers": ["b"]},
    )
    assert [q.id for q in load_questions(path)] == ["q0001", "7"]


def test_multihop_dev_file_loads() -> None:
    if not MULTIHOP_DEV.exists():
        pytest.skip("shared/ benchmark data not beside the checkout")
    questions = load_questions(MULTIHOP_DEV)
    assert len(questions) == 511
    assert sum(not q.answerable for q in questions) == 60
    assert len({q.id for q in questions}) == 511
    null = [q for q in questions if not q.answerable]
    assert all(q.answers == () and q.evidence == () and q.type == "null_query" for q in null)
    first = questions[0]
    assert first.id == "mh0004"
    assert first.answers == ("Caesars Sportsbook",)
    assert first.type == "inference_query"
    assert len(first.evidence) == 3
    assert first.evidence[0].quote.startswith("New customers can get up to $1000")
    assert first.evidence[0].url and first.evidence[0].title


def test_multihop_style_list_without_ids(tmp_path: Path) -> None:
    fact = {"title": "T", "url": "https://u", "source": "S", "published_at": "2023", "fact": "F"}
    records = [
        {"query": "Q0?", "answer": "Yes", "question_type": "comparison_query", "evidence_list": [fact]},
        {"query": "Q1?", "answer": "Insufficient information.", "question_type": "null_query",
         "evidence_list": []},
    ]
    q0, q1 = load_questions(_write(tmp_path, "mh.json", json.dumps(records, indent=2)))
    assert q0.id == "mh0000" and q1.id == "mh0001"
    assert q0.evidence == (Evidence(quote="F", url="https://u", title="T"),)
    assert q0.answerable and q0.answers == ("Yes",)
    assert not q1.answerable and q1.answers == ()


def test_json_list_of_our_records(tmp_path: Path) -> None:
    [q] = load_questions(_write(tmp_path, "ours.json", json.dumps([GOOD])))
    assert q.id == "q1" and q.answers == ("Trump and Putin",)


def test_csv_loads(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "set.csv",
        "\ufeffquestion,answer,id,answerable,type\n"  # BOM, as spreadsheets write it
        'Who met?,"Trump, Zelensky",a,,fact\n'
        "\n"
        "What colour is the sky on Mars?,,b,false,\n"
        '"Multi-line\nquestion?",Budapest,,yes,\n',
    )
    a, b, c = load_questions(path)
    assert a == Question(id="a", question="Who met?", answers=("Trump, Zelensky",), evidence=(),
                         answerable=True, type="fact")
    assert (b.answerable, b.answers, b.type) == (False, (), None)
    assert c.id == "q0005" and c.question == "Multi-line\nquestion?" and c.answerable  # starts on line 5


def test_csv_minimal_columns_default_answerable(tmp_path: Path) -> None:
    path = _write(tmp_path, "min.csv", "question,answer\nQ1?,A1\nQ2?,\n")
    q1, q2 = load_questions(path)
    assert q1.answerable and q1.id == "q0002"
    assert not q2.answerable


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ('{"id": "x", "question": ', "invalid JSON"),
        ({"id": "x", "answers": ["a"]}, "missing `question`"),
        ({"id": "x", "question": "   ", "answers": ["a"]}, "missing `question`"),
        ({"id": "x", "question": "Q?", "answers": "a"}, "`answers` must be a list of strings"),
        ({"id": "x", "question": "Q?", "answers": ["a", 3]}, "`answers` must be a list of strings"),
        ({"id": "x", "question": "Q?", "answer": "a"}, "use `answers`"),
        ({"id": "x", "question": "Q?", "answers": ["a"], "answerable": "yes"}, "must be true or false"),
        ({"id": "x", "question": "Q?", "answerable": True}, "no answers and no evidence"),
        ({"id": "x", "question": "Q?", "answers": [""], "answerable": True}, "no answers and no evidence"),
        ({"id": "x", "question": "Q?", "evidence": [{"quote": "q"}]}, "needs one of file, url"),
        ({"id": "x", "question": "Q?", "evidence": [{"file": "f"}]}, "non-empty string `quote`"),
        ({"id": "x", "question": "Q?", "evidence": "quote"}, "`evidence` must be a list"),
        ({"id": ["x"], "question": "Q?", "answers": ["a"]}, "`id` must be a string"),
        ({"id": "x", "question": "Q?", "answers": ["a"], "type": 3}, "`type` must be a string"),
        ({"id": "x", "question": "Q?", "answers": ["a"], "follows": "nope"}, "`follows` refers to 'nope'"),
        ('["not", "an object"]', "expected a JSON object"),
    ],
)
def test_jsonl_malformed_names_line(tmp_path: Path, bad: object, reason: str) -> None:
    # The bad record is on line 3, after a valid record and a blank line.
    # A line starting with "[" mid-file is still JSONL: only a leading "[" means a list.
    path = _jsonl(tmp_path, GOOD, "", bad)
    _raises(path, "line 3", reason)


def test_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, GOOD, {**GOOD, "question": "again"})
    _raises(path, "line 2", "duplicate id 'q1'", "first at line 1")


def test_follows_must_point_backwards(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, {**GOOD, "id": "q0", "follows": "q1"}, GOOD)
    _raises(path, "line 1", "`follows` refers to 'q1'")


def test_json_list_errors_name_record_index(tmp_path: Path) -> None:
    records = [
        {"query": "Q?", "answer": "A", "question_type": "inference_query", "evidence_list": []},
        {"answer": "A", "question_type": "inference_query", "evidence_list": []},
    ]
    _raises(_write(tmp_path, "a.json", json.dumps(records)), "record 1", "missing `query`")
    records[1] = {"query": "Q?", "answer": ["A"], "question_type": "inference_query", "evidence_list": []}
    _raises(_write(tmp_path, "b.json", json.dumps(records)), "record 1", "`answer` must be a string")
    records[1] = {"query": "Q?", "answer": "A", "question_type": "x", "evidence_list": [{"title": "T"}]}
    _raises(_write(tmp_path, "c.json", json.dumps(records)), "record 1", "evidence_list[0]", "`fact`")
    records[1] = {"id": "mh0000", "query": "Q?", "answer": "A", "evidence_list": []}
    records[0]["id"] = "mh0000"
    _raises(_write(tmp_path, "d.json", json.dumps(records)), "record 1", "duplicate id", "first at record 0")


def test_json_list_invalid_json_names_line(tmp_path: Path) -> None:
    _raises(_write(tmp_path, "bad.json", '[\n  {"query": "Q?"},\n  {oops}\n]'), "line 3", "invalid JSON")


def test_json_wrong_top_level(tmp_path: Path) -> None:
    _raises(_write(tmp_path, "obj.json", '{\n  "question": "Q?"\n}'), "JSON list")
    _raises(_write(tmp_path, "num.json", "42"), "JSON list")


def test_single_line_object_in_json_file_is_jsonl(tmp_path: Path) -> None:
    [q] = load_questions(_write(tmp_path, "one.json", json.dumps(GOOD)))
    assert q.id == "q1"


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ("question,answers\nQ?,A\n", ("line 1", "unknown column(s) 'answers'")),
        ("answer\nA\n", ("line 1", "missing column 'question'")),
        ("question,answer,answer\nQ?,A,B\n", ("line 1", "duplicate column(s) 'answer'")),
        ("question,answer\nQ1?,A\nQ2?,A,extra\n", ("line 3", "expected 2 fields, got 3")),
        ("question,answer\nQ1?,A\n,A\n", ("line 3", "missing `question`")),
        ("question,answer,answerable\nQ1?,A,\nQ2?,,true\n", ("line 3", "no answers and no evidence")),
        ("question,answer,answerable\nQ1?,A,maybe\n", ("line 2", "`answerable` must be true or false")),
        ("id,question,answer\na,Q1?,A\n\na,Q2?,B\n", ("line 4", "duplicate id 'a'", "first at line 2")),
        ("question,answer\n", ("no questions",)),
    ],
)
def test_csv_malformed(tmp_path: Path, body: str, fragments: tuple[str, ...]) -> None:
    _raises(_write(tmp_path, "bad.csv", body), *fragments)


def test_csv_error_after_multiline_field_names_start_line(tmp_path: Path) -> None:
    body = 'question,answer\n"Line one\nline two?",A\nQ3?,A,extra\n'
    _raises(_write(tmp_path, "ml.csv", body), "line 4", "expected 2 fields")


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.json", "empty.csv"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    _raises(_write(tmp_path, name, "  \n\n"), "empty file")


def test_empty_json_list(tmp_path: Path) -> None:
    _raises(_write(tmp_path, "none.json", "[]"), "no questions")


@pytest.mark.parametrize("name", ["set.txt", "set", "set.yaml"])
def test_unknown_extension(tmp_path: Path, name: str) -> None:
    message = _raises(_write(tmp_path, name, json.dumps(GOOD)), "unknown extension")
    assert re.search(r"\.jsonl, \.json or \.csv", message)


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    _raises(tmp_path / "absent.jsonl", "file not found")
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"question": "caf\xe9"}\n')
    _raises(path, "not UTF-8")


def test_conflicting_values_are_read(tmp_path):
    from eval.question_sets import load_questions
    from rag.errors import QuestionSetError

    p = tmp_path / "c.jsonl"
    p.write_text('{"id": "c1", "question": "Who won?", "answers": ["Broncos"], "conflicting": ["Yo Yo Ma"], '
                 '"evidence": [{"quote": "Broncos", "title": "SB"}]}\n', encoding="utf-8")
    assert load_questions(p)[0].conflicting == ("Yo Yo Ma",)
    p.write_text('{"question": "Who won?", "answers": ["Broncos"], "conflicting": "Yo Yo Ma"}\n', encoding="utf-8")
    with pytest.raises(QuestionSetError, match="conflicting"):
        load_questions(p)
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks" / "squad-dev"
    if shared.exists():
        qs = load_questions(shared / "conflicts" / "questions.jsonl")
        assert len(qs) == 150 and all(q.conflicting for q in qs)
        absent = [q for q in load_questions(shared / "questions.jsonl") if q.type == "absent"]
        assert len(absent) == 508 and not any(q.answerable for q in absent)
