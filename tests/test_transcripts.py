from __future__ import annotations

import csv
import functools
import http.server
import json
import re
import threading
from pathlib import Path

import pytest
from conftest import shared_file

from psysim.inputs.snippets import (
    build_snippets,
    is_backchannel,
    merge_turns,
    sample_snippets,
    transcript_snippets,
)
from psysim.inputs.transcripts import (
    DEFAULT_TRANSCRIPTS,
    TranscriptFileError,
    load_transcripts,
)

GENERIC = ["transcript_id", "client_id", "turn", "speaker", "text"]
LONG = "I hear that this week has been hard, and I wonder what has felt heaviest for you."  # 17 words


def write_csv(path: Path, rows: list[list[object]], header: list[str] = GENERIC) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def dialogue(tid: str = "t1", client: str = "c1") -> list[list[object]]:
    return [
        [tid, client, 0, "therapist", "Hello, what brings you here?"],
        [tid, client, 1, "client", "I have been stressed at work for months."],
        [tid, client, 2, "therapist", LONG],
        [tid, client, 3, "client", "The deadlines, mostly, and my manager."],
        [tid, client, 4, "therapist", "Tell me more."],
    ]


# --- shipped demo set ---------------------------------------------------------------------------


def test_demo_set_loads_and_builds() -> None:
    transcripts = load_transcripts()
    assert len(transcripts) == 6
    assert len({t.client_id for t in transcripts}) == 4
    assert sum(len(t.utterances) for t in transcripts) == 139
    assert transcripts[0].labels == {"topic": "reducing alcohol consumption"}
    snippets = build_snippets(transcripts, min_words=15, max_context_turns=None)
    assert len(snippets) == 39  # counted independently when the demo set was written
    assert sum(1 for s in snippets if s.merged_backchannels) == 4  # the four backchannel splits
    assert DEFAULT_TRANSCRIPTS.parent.name == "transcripts"


# --- snippet builder ------------------------------------------------------------------------------


def test_min_words_filter_and_answering_a_client(tmp_path: Path) -> None:
    [t] = load_transcripts(str(write_csv(tmp_path / "a.csv", dialogue())))
    snippets = transcript_snippets(t, min_words=15, max_context_turns=None)
    assert [s.id for s in snippets] == ["t1_t2"]  # turn 0 answers nobody; turn 4 is too short
    assert snippets[0].human_response == LONG
    assert [turn.text for turn in snippets[0].context] == ["Hello, what brings you here?", "I have been stressed at work for months."]
    assert transcript_snippets(t, min_words=3, max_context_turns=None)[-1].id == "t1_t4"
    assert transcript_snippets(t, min_words=18, max_context_turns=None) == []


def test_backchannel_merge(tmp_path: Path) -> None:
    rows = [
        ["t", "c", 0, "therapist", "What brings you in?"],
        ["t", "c", 1, "client", "My sleep has been terrible since the move."],
        ["t", "c", 2, "therapist", "So since the move your nights have been broken, and"],
        ["t", "c", 3, "client", "Mm-hmm."],
        ["t", "c", 4, "therapist", "you are running on empty during the day."],
        ["t", "c", 5, "client", "Exactly that."],
        ["t", "c", 6, "therapist", "Do you nap?"],
        ["t", "c", 7, "client", "Yeah."],  # answers a question: not a backchannel split
        ["t", "c", 8, "therapist", "How long do those naps usually last, and how do you feel after them?"],
    ]
    [t] = load_transcripts(str(write_csv(tmp_path / "b.csv", rows)))
    turns = merge_turns(t)
    assert [turn.speaker for turn in turns] == ["therapist", "client", "therapist", "client", "therapist", "client", "therapist"]
    assert turns[2].text.endswith("and you are running on empty during the day.")
    assert turns[2].merged_backchannels == ["Mm-hmm."] and turns[2].first_turn == 2
    snippets = transcript_snippets(t, min_words=15, max_context_turns=None)
    assert [s.id for s in snippets] == ["t_t2"]
    assert snippets[0].merged_backchannels == ["Mm-hmm."]


def test_consecutive_same_speaker_utterances_merge(tmp_path: Path) -> None:
    rows = dialogue()[:3] + [["t1", "c1", 3, "therapist", "And what else?"]]
    [t] = load_transcripts(str(write_csv(tmp_path / "c.csv", rows)))
    assert merge_turns(t)[-1].text == f"{LONG} And what else?"


@pytest.mark.parametrize("text", ["Mm-hmm.", "Uh-huh", "Yeah, yeah.", "Okay.", "All right", "mm"])
def test_backchannels(text: str) -> None:
    assert is_backchannel(text)


@pytest.mark.parametrize("text", ["No.", "Yeah, I think so, it was hard.", "I guess", ""])
def test_not_backchannels(text: str) -> None:
    assert not is_backchannel(text)


def test_context_limit_is_recorded(tmp_path: Path) -> None:
    rows = []
    for i in range(0, 30, 2):
        rows.append(["t", "c", i, "therapist", LONG])
        rows.append(["t", "c", i + 1, "client", "I am not sure what to say about that."])
    rows.append(["t", "c", 30, "therapist", LONG])
    [t] = load_transcripts(str(write_csv(tmp_path / "d.csv", rows)))
    last = transcript_snippets(t, min_words=15, max_context_turns=6)[-1]
    assert len(last.context) == 6 and last.context_truncated and last.context_turns_available == 30
    assert last.context[-1].speaker == "client"
    full = transcript_snippets(t, min_words=15, max_context_turns=None)[-1]
    assert len(full.context) == 30 and not full.context_truncated


def test_sampling_spreads_across_clients_and_is_seeded(tmp_path: Path) -> None:
    rows = []
    for client, transcripts in (("big", 6), ("small1", 1), ("small2", 1)):
        for k in range(transcripts):
            rows += dialogue(tid=f"{client}_{k}", client=client)
    snippets = build_snippets(load_transcripts(str(write_csv(tmp_path / "e.csv", rows))), 15, None)
    assert len(snippets) == 8
    chosen = sample_snippets(snippets, 3, seed=1)
    assert {s.client_id for s in chosen} == {"big", "small1", "small2"}  # every client before repeats
    assert [s.id for s in chosen] == [s.id for s in sample_snippets(snippets, 3, seed=1)]
    assert {s.id for s in sample_snippets(snippets, 5, seed=2)} != {s.id for s in sample_snippets(snippets, 5, seed=3)}
    assert len(sample_snippets(snippets, None, seed=0)) == 8 == len(sample_snippets(snippets, 100, seed=0))


def test_labels_carried_into_metadata(tmp_path: Path) -> None:
    rows = [r + ["high", "alcohol"] for r in dialogue()]
    path = write_csv(tmp_path / "f.csv", rows, GENERIC + ["mi_quality", "topic"])
    [snippet] = build_snippets(load_transcripts(str(path)), 15, None)
    assert snippet.labels == {"mi_quality": "high", "topic": "alcohol"}


# --- generic format options: mapping, JSONL, URL, Hugging Face ------------------------------------


def test_column_and_speaker_mapping(tmp_path: Path) -> None:
    rows = [[r[0], r[2], "T" if r[3] == "therapist" else "C", r[4]] for r in dialogue()]
    path = write_csv(tmp_path / "g.csv", rows, ["session", "idx", "who", "utterance"])
    [t] = load_transcripts(
        str(path),
        columns={"transcript_id": "session", "turn": "idx", "speaker": "who", "text": "utterance"},
        speakers={"T": "therapist", "C": "client"},
    )
    assert t.client_id == "t1"  # no client column: the transcript is its own client
    assert [u.speaker for u in t.utterances][:2] == ["therapist", "client"]


def test_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(json.dumps(dict(zip(GENERIC, r))) for r in dialogue()) + "\n")
    [t] = load_transcripts(str(path))
    assert len(t.utterances) == 5 and t.client_id == "c1"


def test_url(tmp_path: Path) -> None:
    write_csv(tmp_path / "served.csv", dialogue())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/served.csv"
        [t] = load_transcripts(url)
        assert t.source == url and len(t.utterances) == 5
        with pytest.raises(TranscriptFileError, match="cannot download"):
            load_transcripts(f"http://127.0.0.1:{server.server_address[1]}/missing.csv")
    finally:
        server.shutdown()


def test_hugging_face_dataset_id(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    calls = []

    def fake_load_dataset(name: str, split: str):
        calls.append((name, split))
        return datasets.Dataset.from_list([dict(zip(GENERIC, r)) for r in dialogue()])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    [t] = load_transcripts("hf:some-org/counselling-transcripts", split="test")
    assert calls == [("some-org/counselling-transcripts", "test")]  # the id without the prefix
    assert len(t.utterances) == 5 and t.source == "hf:some-org/counselling-transcripts"


def test_only_the_explicit_hf_form_goes_to_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def no_hub(*args, **kwargs):
        raise AssertionError(f"load_dataset called for a local path: {args}")

    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    for mistyped in ("data/AnnoMI-simple", "some-org/counselling-transcripts", str(tmp_path / "missing.csv")):
        with pytest.raises(TranscriptFileError, match=rf"^{re.escape(mistyped)}: file not found; pass an existing file with -T transcripts=PATH \(a Hugging Face dataset is written hf:org/name\)$"):
            load_transcripts(mistyped)
    with pytest.raises(TranscriptFileError, match="is a directory"):
        load_transcripts(str(tmp_path))
    with pytest.raises(TranscriptFileError, match=r"hf:: no dataset id after 'hf:'"):
        load_transcripts("hf:")


# --- bad input --------------------------------------------------------------------------------------


def test_missing_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [r[:4] for r in dialogue()], GENERIC[:4])
    with pytest.raises(TranscriptFileError, match=r"m.csv: missing column\(s\): text") as error:
        load_transcripts(str(path))
    # the message says which -T argument fixes it, with an example
    assert str(error.value).endswith(
        "name the file's columns with -T columns=..., e.g. "
        "-T 'columns={transcript_id: session, turn: idx, speaker: role, text: utterance}'"
    )


def test_unknown_speaker(tmp_path: Path) -> None:
    rows = dialogue()
    rows[3][3] = "narrator"
    path = write_csv(tmp_path / "s.csv", rows)
    with pytest.raises(TranscriptFileError, match=r"s.csv: row 4 \(line 5\): field 'speaker': unknown speaker label 'narrator'") as error:
        load_transcripts(str(path))
    assert "map the file's labels with -T speakers=..., e.g. -T 'speakers={T: therapist, C: client}'" in str(error.value)


@pytest.mark.parametrize(("column", "value", "message"), [
    (4, "I was\x00 there.", r"row 2 \(line 3\): field 'text': control character U\+0000 \(NUL\) at character 6"),
    (4, "\x1b[2Jgone", r"row 2 \(line 3\): field 'text': control character U\+001B \(ESC\) at character 1"),
    (4, "back\x08space", r"row 2 \(line 3\): field 'text': control character U\+0008 \(backspace\)"),
    (4, "del\x7f", r"row 2 \(line 3\): field 'text': control character U\+007F \(DEL\)"),
    (0, "t\x0c1", r"row 2 \(line 3\): field 'transcript_id': control character U\+000C \(form feed\)"),
])
def test_control_characters_in_text_are_rejected_with_row_and_field(tmp_path: Path, column: int, value: str, message: str) -> None:
    rows = dialogue()
    rows[1][column] = value
    with pytest.raises(TranscriptFileError, match=r"c.csv: " + message):
        load_transcripts(str(write_csv(tmp_path / "c.csv", rows)))
    # the same in JSONL, where a NUL arrives as the escape \u0000
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(dict(zip(GENERIC, row))) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(TranscriptFileError, match=r"c.jsonl: " + message.replace(r"\(line 3\)", r"\(line 2\)")):
        load_transcripts(str(path))


def test_tab_newline_and_carriage_return_in_text_are_kept(tmp_path: Path) -> None:
    rows = dialogue()
    rows[1][4] = "I have been\tstressed\r\nat work."
    [transcript] = load_transcripts(str(write_csv(tmp_path / "ok.csv", rows)))
    assert transcript.utterances[1].text == "I have been\tstressed\r\nat work."


def test_empty_text(tmp_path: Path) -> None:
    rows = dialogue()
    rows[1][4] = "   "
    with pytest.raises(TranscriptFileError, match=r"row 2 \(line 3\): field 'text': empty"):
        load_transcripts(str(write_csv(tmp_path / "e.csv", rows)))


def test_bad_turn_order(tmp_path: Path) -> None:
    rows = dialogue()
    rows[2][2] = "two"
    with pytest.raises(TranscriptFileError, match=r"row 3 \(line 4\): field 'turn': not an integer"):
        load_transcripts(str(write_csv(tmp_path / "o.csv", rows)))
    rows = dialogue()
    rows[2][2] = 1
    with pytest.raises(TranscriptFileError, match=r"field 'turn': turn 1 appears twice in transcript t1"):
        load_transcripts(str(write_csv(tmp_path / "o2.csv", rows)))


def test_transcript_without_eligible_turn(tmp_path: Path) -> None:
    rows = dialogue() + [["t2", "c2", 0, "therapist", "Hi."], ["t2", "c2", 1, "client", "Hello there, nice to meet you."]]
    path = write_csv(tmp_path / "n.csv", rows)
    with pytest.raises(TranscriptFileError, match=r"n.csv: transcript 't2' \(from row 6 \(line 7\)\): field 'text': no therapist turn of >= 15 words"):
        build_snippets(load_transcripts(str(path)), min_words=15)
    assert len(build_snippets(load_transcripts(str(path)), min_words=15, require_eligible=False)) == 1


def test_undecodable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes(("transcript_id,turn,speaker,text\nt,0,therapist,caf").encode() + b"\xe9\n")
    with pytest.raises(TranscriptFileError, match=r"u.csv: line 2: undecodable bytes"):
        load_transcripts(str(path))


def test_invalid_jsonl_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps(dict(zip(GENERIC, dialogue()[0]))) + "\n{oops\n")
    with pytest.raises(TranscriptFileError, match=r"j.jsonl: line 2: invalid JSON"):
        load_transcripts(str(path))


def test_missing_annomi_column_when_forced(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", dialogue())
    with pytest.raises(TranscriptFileError, match="missing AnnoMI column"):
        load_transcripts(str(path), transcript_format="annomi")


def test_task_rejects_bad_input_before_any_call(tmp_path: Path) -> None:
    from psysim.tasks.human_comparison import human_comparison

    rows = dialogue()
    rows[0][3] = "coach"
    with pytest.raises(TranscriptFileError, match="unknown speaker label 'coach'"):
        human_comparison(transcripts=str(write_csv(tmp_path / "bad.csv", rows)))
    for args, message in (
        ({"reviser": "client"}, "reviser must be one of"),
        ({"snippets": 0}, "snippets must be an integer >= 1 or null"),
        ({"min_words": 0}, "min_words must be an integer >= 1"),
        ({"transcript_format": "xml"}, "transcript_format must be one of"),
        ({"temperature": -1}, "temperature must be"),
    ):
        with pytest.raises(ValueError, match=message):
            human_comparison(**args)


# --- the real AnnoMI data (skips when ../shared/data is absent) ---------------------------------------


def test_annomi_counts() -> None:
    path = shared_file("annomi", "AnnoMI-simple.csv")
    transcripts = load_transcripts(str(path))
    assert len(transcripts) == 133
    assert len({t.client_id for t in transcripts}) == 119  # video_url identifies the client
    assert sum(len(t.utterances) for t in transcripts) == 9699
    assert sum(t.labels["mi_quality"] == "high" for t in transcripts) == 110
    snippets = build_snippets(transcripts, min_words=15, max_context_turns=None)
    # 1,899 therapist utterances have >= 15 words; merged into turns that answer a client: 1,631
    assert len(snippets) == 1631
    assert sum(1 for s in snippets if s.merged_backchannels) == 496
    assert len({s.client_id for s in snippets}) == 119
    by_id = {s.id: s for s in snippets}
    # transcript 0, checked by hand: utterance 2 is split by the client's "Mm-hmm." (3) and
    # continues in 4; it answers the client's "Sure." (1); utterance 6 has 7 words
    first = by_id["0_t2"]
    assert first.human_response.startswith("So, let's see. It looks that you put--")
    assert first.human_response.endswith("-and you usually have three to four drinks when you do drink.")
    assert first.merged_backchannels == ["Mm-hmm."]
    assert [t.text for t in first.context][1] == "Sure."
    assert first.labels["mi_quality"] == "high" and first.labels["topic"] == "reducing alcohol consumption"
    assert "0_t6" not in by_id
    sample = sample_snippets(snippets, 50, seed=0)
    assert len({s.client_id for s in sample}) == 50  # 50 snippets from 50 different clients


def test_annomi_full_file_loads() -> None:
    # per-annotator rows: 428 utterances appear 10 times each, with identical text
    path = shared_file("annomi", "AnnoMI-full.csv")
    transcripts = load_transcripts(str(path))
    assert len(transcripts) == 133
    assert sum(len(t.utterances) for t in transcripts) == 9699
    assert len(build_snippets(transcripts, min_words=15, max_context_turns=None)) == 1631


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"columns": "session"}, r"columns must be a mapping, e.g. -T 'columns=\{transcript_id: session, turn: idx, speaker: role, text: utterance\}'"),
        ({"columns": {"utterance": "text"}}, r"columns mapping has unknown field\(s\): utterance \(known: transcript_id, turn, speaker, text, client_id\)"),
        ({"columns": {"text": 3}}, r"columns mapping: expected a column name for each field; got text: 3"),
        ({"speakers": ["T", "C"]}, r"speakers must be a mapping"),
        ({"speakers": {"T": "therapist", "C": "patient"}}, r"speakers mapping: each label must map to therapist or client; got C: 'patient'"),
    ],
)
def test_bad_column_and_speaker_maps(tmp_path: Path, kwargs: dict, message: str) -> None:
    path = write_csv(tmp_path / "g.csv", dialogue())
    with pytest.raises(ValueError, match=message):
        load_transcripts(str(path), **kwargs)


def test_mapped_client_column_must_exist(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "g.csv", dialogue())
    with pytest.raises(TranscriptFileError, match=r"g.csv: missing column\(s\): video \(for client_id\); found: .* \(header, line 1\)"):
        load_transcripts(str(path), columns={"client_id": "video"})


def test_columns_map_is_not_silently_ignored_for_annomi(tmp_path: Path) -> None:
    header = ["transcript_id", "utterance_id", "interlocutor", "utterance_text", "mi_quality", "video_url", "topic"]
    rows = [["0", i, "therapist" if i % 2 == 0 else "client", LONG, "high", "v0", "alcohol"] for i in range(2)]
    path = write_csv(tmp_path / "annomi.csv", rows, header)
    assert len(load_transcripts(str(path))) == 1
    with pytest.raises(ValueError, match="columns mapping applies to the generic format only"):
        load_transcripts(str(path), columns={"text": "utterance_text"})


def test_numeric_speaker_labels_from_yaml(tmp_path: Path) -> None:
    rows = [[r[0], r[1], r[2], "1" if r[3] == "therapist" else "2", r[4]] for r in dialogue()]
    [t] = load_transcripts(str(write_csv(tmp_path / "n.csv", rows)), speakers={1: "therapist", 2: "client"})
    assert t.utterances[0].speaker == "therapist" and t.utterances[1].speaker == "client"
