"""Property-based tests: the transcript loaders on generated malformed input.

Each generated file holds one fault (or none) at a known line. The loader must either return
transcripts whose every utterance equals the text written, or raise TranscriptFileError naming
the file and the faulty line; never cut or shift a field, drop a row, or raise anything else.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psysim.inputs.transcripts import TranscriptFileError, load_transcripts

HEADER = ["transcript_id", "client_id", "turn", "speaker", "text"]
SETTINGS = settings(
    max_examples=25, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# text with every character that matters to CSV/TSV, plus non-ASCII
texts = st.text(alphabet=st.sampled_from(list("ab .'\"é,\t\n\r;\u2028\x85")), min_size=1, max_size=12).filter(str.strip)
plain_texts = st.text(alphabet=st.sampled_from(list("ab .'é;")), min_size=1, max_size=12).filter(str.strip)
rows = st.lists(
    st.tuples(st.sampled_from(["t1", "t2"]), st.sampled_from(["therapist", "client"]), texts), min_size=1, max_size=6
)

ROW_FAULTS = ("unquoted", "stray_quote", "extra_field", "missing_field", "blank_speaker", "blank_text", "bad_turn", "turn_variant")
BAD_TURNS = ["two", "1.5", "", "1e3", "0x1", "1_0", "٣", "nan", "inf", "- 1"]


@dataclass
class Written:
    """A generated file and what it says: (transcript, turn) -> (speaker, text)."""

    data: bytes
    suffix: str = ".csv"
    expected: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)
    fault: str = "none"
    fault_line: int | None = None
    must_fail: bool = False
    multiline: bool = False


def serialize(fields: list[str], delimiter: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerow(fields)
    return buffer.getvalue()


FILE_FAULTS = ("none", "non_utf8", "empty", "header_only")


@st.composite
def delimited_files(draw: st.DrawFn, suffix: str, fault: str) -> Written:
    delimiter = "\t" if suffix == ".tsv" else ","
    file_fault = "row" if fault in ROW_FAULTS else fault
    if file_fault == "empty":
        return Written(draw(st.sampled_from([b"", b"\n", b"  \n\n"])), suffix, fault="empty", must_fail=True)
    if file_fault == "header_only":
        return Written(serialize(HEADER, delimiter).encode(), suffix, fault="header_only", fault_line=1, must_fail=True)

    records = draw(rows)
    fault_row = draw(st.integers(0, len(records) - 1)) if file_fault == "row" else None
    written = Written(b"", suffix, fault=fault)
    lines = [serialize(HEADER, delimiter)]
    line = 2
    for index, (tid, speaker, text) in enumerate(records):
        fields = [tid, f"c_{tid}", str(index), speaker, text]
        expected_text = text.strip()
        if index == fault_row:
            written.fault_line = line
            if fault == "unquoted":
                fields[4] = text = text.lstrip('"') or "a"  # a field opening with '"' is quoted by CSV's rules
                expected_text = text.strip()
                out = delimiter.join(fields) + "\n"
                written.must_fail = delimiter in text
            elif fault == "stray_quote":
                text = draw(plain_texts)
                offset = draw(st.integers(0, len(text)))
                fields[4] = text[:offset] + '"' + text[offset:]
                expected_text = fields[4].strip()
                out = delimiter.join(fields) + "\n"
                written.must_fail = offset == 0  # opens a quoted field that never closes properly
            elif fault == "extra_field":
                out = serialize(fields + [draw(texts)], delimiter)
                written.must_fail = True
            elif fault == "missing_field":
                del fields[draw(st.integers(0, len(fields) - 1))]
                out = serialize(fields, delimiter)
                written.must_fail = True
            elif fault in ("blank_speaker", "blank_text"):
                fields[3 if fault == "blank_speaker" else 4] = draw(st.sampled_from(["", " ", "\t"]))
                out = serialize(fields, delimiter)
                written.must_fail = True
            elif fault == "bad_turn":
                fields[2] = draw(st.sampled_from(BAD_TURNS))
                out = serialize(fields, delimiter)
                written.must_fail = True
            else:  # turn_variant: other spellings of the same whole number are fine
                fields[2] = draw(st.sampled_from([f"{index}.0", f"+{index}", f" {index} ", f"{index}.00"]))
                out = serialize(fields, delimiter)
        else:
            out = serialize(fields, delimiter)
        written.multiline |= "\n" in text or "\r" in text
        written.expected[(tid, index)] = (speaker, expected_text)
        lines.append(out)
        line += out.count("\n")

    data = "".join(lines).encode("utf-8")
    if file_fault == "non_utf8":
        offset = draw(st.integers(0, len(data)))
        data = data[:offset] + draw(st.sampled_from([b"\xff", b"\xfe", b"\x80"])) + data[offset:]
        written.fault, written.fault_line, written.must_fail = "non_utf8", data[:offset].count(b"\n") + 1, True
    written.data = data
    return written


def check(path: Path, written: Written) -> None:
    try:
        transcripts = load_transcripts(str(path))
    except TranscriptFileError as error:
        message = str(error)
        assert message.startswith(f"{path}: "), message
        if written.fault in ("empty", "header_only"):
            assert re.search(r"empty file|no utterance rows", message), message
        else:
            assert re.search(r"\b(line|row) \d+", message), message
        if written.fault_line is not None and written.fault != "none" and not written.multiline:
            # the line named is where the faulty row starts (later lines may be swallowed by a quote)
            assert re.search(rf"\bline {written.fault_line}\b", message), (written.fault_line, message)
        return
    # anything else raised (KeyError, csv.Error, UnicodeDecodeError...) fails the test by itself
    assert not written.must_fail, f"{written.fault} at line {written.fault_line} was accepted"
    got = {(t.id, u.turn): (u.speaker, u.text) for t in transcripts for u in t.utterances}
    assert got == written.expected  # every row, every field, nothing cut, nothing dropped


@pytest.mark.parametrize("fault", ROW_FAULTS + FILE_FAULTS)
@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
@SETTINGS
@given(data=st.data())
def test_delimited_files_load_exactly_or_fail_naming_the_line(
    tmp_path: Path, suffix: str, fault: str, data: st.DataObject
) -> None:
    written = data.draw(delimited_files(suffix, fault))
    path = tmp_path / f"generated{suffix}"
    path.write_bytes(written.data)
    check(path, written)
    if written.fault in ("none", "turn_variant") and not written.multiline:
        load_transcripts(str(path))  # a sound file must load


# --- JSONL ------------------------------------------------------------------------------------------

JSONL_FAULTS = ("not_object", "missing_key", "invalid_json", "duplicate_key", "text_not_string", "bad_turn", "null_text")


@st.composite
def jsonl_files(draw: st.DrawFn, fault: str) -> Written:
    records = draw(rows)
    faulty = fault != "none"
    fault_row = draw(st.integers(0, len(records) - 1)) if faulty else None
    written = Written(b"", ".jsonl", fault=fault, must_fail=faulty)
    lines = []
    for index, (tid, speaker, text) in enumerate(records):
        row = {"transcript_id": tid, "client_id": f"c_{tid}", "turn": index, "speaker": speaker, "text": text}
        out = json.dumps(row, ensure_ascii=False)
        if index == fault_row:
            written.fault_line = index + 1
            if fault == "not_object":
                out = json.dumps(draw(st.sampled_from([list(row.values()), text, index, None, True])))
            elif fault == "missing_key":
                del row[draw(st.sampled_from(["transcript_id", "turn", "speaker", "text"]))]
                out = json.dumps(row)
            elif fault == "invalid_json":
                out = out[: draw(st.integers(1, len(out) - 1))]
            elif fault == "duplicate_key":
                out = out[:-1] + f', "text": {json.dumps(draw(texts))}}}'
            elif fault == "text_not_string":
                row["text"] = draw(st.sampled_from([[text], {"t": text}, 7, True]))
                out = json.dumps(row)
            elif fault == "bad_turn":
                row["turn"] = draw(st.sampled_from([1.5, "two", True, None, [1]]))
                out = json.dumps(row)
            else:
                row["text"] = draw(st.sampled_from([None, "", "  "]))
                out = json.dumps(row)
        written.expected[(tid, index)] = (speaker, text.strip())
        lines.append(out + "\n")
    written.data = "".join(lines).encode("utf-8")
    return written


@pytest.mark.parametrize("fault", ("none",) + JSONL_FAULTS)
@SETTINGS
@given(data=st.data())
def test_jsonl_files_load_exactly_or_fail_naming_the_line(tmp_path: Path, fault: str, data: st.DataObject) -> None:
    written = data.draw(jsonl_files(fault))
    path = tmp_path / "generated.jsonl"
    path.write_bytes(written.data)
    check(path, written)


# --- the examples from the issue, spelled out -------------------------------------------------------


def test_unquoted_comma_is_an_error_not_a_cut_utterance(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "transcript_id,client_id,turn,speaker,text\n"
        "t1,c1,0,therapist,How are you?\n"
        "t1,c1,1,client,Okay. Well, I do not know\n"
    )
    with pytest.raises(TranscriptFileError) as error:
        load_transcripts(str(path))
    assert str(error.value).startswith(
        f"{path}: row 2 (line 3): expected 5 fields as in the header "
        "(transcript_id, client_id, turn, speaker, text), found 6; beyond 'text': ' I do not know'"
    )


def test_missing_trailing_field_is_an_error_not_an_empty_label(tmp_path: Path) -> None:
    path = tmp_path / "b.tsv"
    path.write_text("transcript_id\tturn\tspeaker\ttext\ttopic\nt1\t0\ttherapist\tHello\n")
    with pytest.raises(TranscriptFileError, match=r"b.tsv: row 1 \(line 2\): expected 5 fields .* found 4; missing: topic"):
        load_transcripts(str(path))


def test_unmatched_quote_that_swallows_rows_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text(
        "transcript_id,client_id,turn,speaker,text\n"
        't1,c1,0,therapist,"How are you?\n'
        "t1,c1,1,client,Fine\n"
        't1,c1,2,therapist,Good"\n'
    )
    with pytest.raises(TranscriptFileError, match=r"q.csv: row 1 \(line 2\): a quoted field runs over several lines"):
        load_transcripts(str(path))


def test_a_real_multiline_utterance_loads(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "transcript_id,client_id,turn,speaker,text\n"
        't1,c1,0,therapist,"In what ways, if any,\nmight your life be better?"\n'
        "t1,c1,1,client,Hard to say.\n"
    )
    [t] = load_transcripts(str(path))
    assert t.utterances[0].text == "In what ways, if any,\nmight your life be better?"
    assert t.utterances[1].row == "row 2 (line 4)"


@pytest.mark.parametrize(
    "content, message",
    [
        ("", r"empty file: no header line"),
        ("transcript_id,client_id,turn,speaker,text\n", r"no utterance rows after the header \(line 1\)"),
        ("transcript_id,turn,speaker,text,turn\n", r"line 1 \(header\): column 'turn' appears twice \(fields 2 and 5\)"),
        ('transcript_id,turn,speaker,text\nt1,0,therapist,"Hi" there\n', r"line 2: malformed CSV: ',' expected after '\"'"),
        ('transcript_id,turn,speaker,text\nt1,0,therapist,"Hi\n', r"line 2: malformed CSV: a quoted field is never closed"),
    ],
)
def test_structural_csv_faults(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "s.csv"
    path.write_text(content)
    with pytest.raises(TranscriptFileError, match=rf"^{re.escape(str(path))}: {message}"):
        load_transcripts(str(path))


def test_pandas_index_column_is_named_not_rejected(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(",transcript_id,turn,speaker,text\n0,t1,0,therapist,Hello\n1,t1,1,client,Hi\n")
    [t] = load_transcripts(str(path))
    assert t.utterances[0].labels == {"unnamed_1": "0"}


@pytest.mark.parametrize(
    "line, message",
    [
        ('["t1", 0, "therapist", "Hi"]', r"line 1: expected a JSON object \(one utterance per line\), found list"),
        ('{"transcript_id": "t1", "turn": 0, "speaker": "therapist"}', r"missing column\(s\): text; found: transcript_id, turn, speaker \(keys of row 1 \(line 1\)\)"),
        ('{"transcript_id": "t1", "turn": 0, "speaker": "therapist", "text": "a"}\n\n{"transcript_id": "t1", "turn": 1, "speaker": "client"}',
         r"row 2 \(line 3\): field 'text': missing"),
        ('{"transcript_id": "t1", "turn": 0, "speaker": "therapist", "text": "a", "text": "b"}', r"line 1: field 'text': appears twice"),
        ('{"transcript_id": "t1", "turn": 0, "speaker": "therapist", "text": ["a"]}', r"field 'text': expected text, found list"),
        ('{"transcript_id": "t1", "turn": true, "speaker": "therapist", "text": "a"}', r"field 'turn': expected text or a number, found bool"),
        ('{"transcript_id": "t1", "turn": 0.5, "speaker": "therapist", "text": "a"}', r"field 'turn': not an integer turn order: '0.5'"),
    ],
)
def test_jsonl_faults(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(TranscriptFileError, match=rf"^{re.escape(str(path))}: .*{message}"):
        load_transcripts(str(path))
