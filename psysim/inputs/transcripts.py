"""Therapy transcript loaders for Experiment 2: AnnoMI CSV, a generic long format, HF datasets.

All loaders return :class:`Transcript` objects. Bad input raises :class:`TranscriptFileError`
naming the source, the row (and line) and the field; nothing half-read is returned, and no
value is cut, shifted or dropped (a CSV row must have exactly the header's fields).

Sources: a local path or an ``http(s)://`` URL (``.csv``, ``.tsv``, ``.jsonl``), or
``hf:org/name`` for a Hugging Face dataset; only that explicit form goes to the hub.

Formats
-------
AnnoMI (CSV, recognised by its columns): ``transcript_id``, ``utterance_id`` (order within a
transcript), ``interlocutor`` (``therapist``/``client``), ``utterance_text``, ``mi_quality``,
``video_url`` (identifies the client), ``topic``; other columns are kept per utterance.

Generic long format (CSV, TSV or JSONL): one row per utterance with ``transcript_id``, ``turn``
(order), ``speaker``, ``text``, optional ``client_id``; every other column is kept as
transcript-level metadata when it is constant within a transcript. Other corpora map their
column names with ``columns={"transcript_id": "session", "turn": "idx", ...}`` and their speaker
labels with ``speakers={"T": "therapist", "C": "client"}``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.request
from collections import defaultdict
from typing import Any, Iterable, Literal, NamedTuple

from pydantic import BaseModel, Field

from psysim.inputs.control_chars import control_character
from psysim.inputs.data_files import package_file
from psysim.inputs.input_error import InputError, TaskArgumentError
from psysim.inputs.user_paths import user_path

DEFAULT_TRANSCRIPTS = package_file("datasets", "transcripts", "demo_transcripts.csv")

ANNOMI_COLUMNS = ("transcript_id", "utterance_id", "interlocutor", "utterance_text", "mi_quality", "video_url", "topic")
# AnnoMI as generic columns: transcript-level labels carried into every snippet's metadata.
ANNOMI_MAPPING = {
    "transcript_id": "transcript_id",
    "turn": "utterance_id",
    "speaker": "interlocutor",
    "text": "utterance_text",
    "client_id": "video_url",
}
ANNOMI_TRANSCRIPT_LABELS = ("mi_quality", "topic", "video_title", "video_url")
GENERIC_FIELDS = ("transcript_id", "turn", "speaker", "text")
DEFAULT_SPEAKERS = {"therapist": "therapist", "client": "client", "counselor": "therapist", "counsellor": "therapist"}

# how the task arguments are written on the command line, for error messages
COLUMNS_EXAMPLE = "-T 'columns={transcript_id: session, turn: idx, speaker: role, text: utterance}'"
SPEAKERS_EXAMPLE = "-T 'speakers={T: therapist, C: client}'"

TranscriptFormat = Literal["auto", "annomi", "generic"]
TRANSCRIPT_FORMATS = ("auto", "annomi", "generic")


class TranscriptFileError(InputError):
    """Transcript input that cannot be used; the message names source, row and field."""


class Utterance(BaseModel):
    turn: int
    speaker: Literal["therapist", "client"]
    text: str
    row: str
    """Where it came from, for error messages (e.g. ``line 12``)."""
    labels: dict[str, Any] = Field(default_factory=dict)


class Transcript(BaseModel):
    id: str
    client_id: str
    utterances: list[Utterance]
    labels: dict[str, Any] = Field(default_factory=dict)
    source: str


# --- reading rows ----------------------------------------------------------------------------

HF_PREFIX = "hf:"
Rows = list[tuple[str, dict[str, Any]]]


class RowTable(NamedTuple):
    """Rows read from a source, before they are checked as utterances."""

    columns: list[str]
    rows: Rows
    """``(row label, mapping)`` pairs; the label says where the row is (``row 3 (line 4)``)."""
    columns_from: str
    """Where the column names come from, for error messages (``header, line 1``)."""


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _read_bytes(source: str) -> bytes:
    if _is_url(source):
        try:
            with urllib.request.urlopen(source, timeout=60) as response:  # noqa: S310 - user-given URL
                return response.read()
        except OSError as ex:
            raise TranscriptFileError(f"{source}: cannot download: {ex}") from ex
    path = user_path(source)  # a relative -T path is read from where the command was started
    if path.is_dir():
        raise TranscriptFileError(f"{source}: is a directory, expected a CSV, TSV or JSONL file")
    if not path.is_file():
        raise TranscriptFileError(
            f"{source}: file not found; pass an existing file with -T transcripts=PATH (a Hugging Face "
            f"dataset is written {HF_PREFIX}org/name)"
        )
    return path.read_bytes()


def _decode(source: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as ex:
        line = data[: ex.start].count(b"\n") + 1
        raise TranscriptFileError(
            f"{source}: line {line}: undecodable bytes at offset {ex.start} (expected UTF-8): {ex.reason}"
        ) from ex


def _file_kind(source: str) -> str:
    name = source.split("?")[0].lower()
    for suffixes, kind in (((".jsonl", ".ndjson"), "jsonl"), ((".csv",), "csv"), ((".tsv",), "tsv")):
        if name.endswith(suffixes):
            return kind
    raise TranscriptFileError(f"{source}: unsupported file type (expected .csv, .tsv or .jsonl)")


def read_rows(source: str) -> RowTable:
    """Rows of a CSV, TSV or JSONL file (path or URL), each labelled with where it is.

    Every CSV/TSV row must have exactly the header's fields: an unquoted delimiter inside a
    field, or a missing field, is an error naming the line, never a silently shifted or cut
    value. Blank lines are skipped. Labels read ``row <k> (line <n>)``, ``n`` being the line
    where the row starts.
    """
    text = _decode(source, _read_bytes(source))
    kind = _file_kind(source)
    if kind == "jsonl":
        return _jsonl_rows(source, text)
    return _delimited_rows(source, text, kind)


def _jsonl_rows(source: str, text: str) -> RowTable:
    rows: Rows = []
    columns: dict[str, None] = {}
    # split on line feeds only: str.splitlines would also split at U+0085 or U+2028, which
    # JSON allows unescaped inside a string
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as ex:
            raise TranscriptFileError(f"{source}: line {number}: invalid JSON: {ex.msg} (column {ex.colno})") from ex
        except _DuplicateKey as ex:
            raise TranscriptFileError(f"{source}: line {number}: field '{ex.key}': appears twice in one object") from ex
        if not isinstance(row, dict):
            raise TranscriptFileError(
                f"{source}: line {number}: expected a JSON object (one utterance per line), found {type(row).__name__}"
            )
        columns.update(dict.fromkeys(row))
        rows.append((f"row {len(rows) + 1} (line {number})", row))
    if not rows:
        raise TranscriptFileError(f"{source}: no rows (the file is empty)")
    span = rows[0][0] if len(rows) == 1 else f"{rows[0][0]} to {rows[-1][0]}"
    return RowTable(list(columns), rows, f"keys of {span}")


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys; a row that says two things is an error
    row: dict[str, Any] = {}
    for key, value in pairs:
        if key in row:
            raise _DuplicateKey(key)
        row[key] = value
    return row


def _delimited_rows(source: str, text: str, kind: str) -> RowTable:
    delimiter = "\t" if kind == "tsv" else ","
    # strict: a quote that closes mid-field ("a"b) is an error instead of being dropped
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    header_line = 0
    rows: Rows = []
    end = 0  # last physical line read
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if len(record) <= 1 and not "".join(record).strip():
                continue  # a blank line
            if header is None:
                header, header_line = _header(source, record, start), start
                continue
            label = f"row {len(rows) + 1} (line {start})"
            if len(record) != len(header):
                raise TranscriptFileError(_field_count_message(source, label, header, record, delimiter, kind))
            if end > start:
                _check_multiline(source, label, header, record, delimiter)
            rows.append((label, dict(zip(header, record))))
    except csv.Error as ex:
        problem = (
            "a quoted field is never closed (an unmatched '\"')"
            if "unexpected end of data" in str(ex)
            else f"{ex} (a field with a quote in it must be quoted whole, its quotes doubled: \"a \"\"b\"\" c\")"
        )
        raise TranscriptFileError(f"{source}: line {end + 1}: malformed {kind.upper()}: {problem}") from ex
    if header is None:
        raise TranscriptFileError(f"{source}: empty file: no header line")
    if not rows:
        raise TranscriptFileError(f"{source}: no utterance rows after the header (line {header_line})")
    return RowTable(header, rows, f"header, line {header_line}")


def _header(source: str, record: list[str], line: int) -> list[str]:
    # an index column written by pandas has an empty name: give it one rather than reject it
    header = [name.strip() or f"unnamed_{index}" for index, name in enumerate(record, start=1)]
    seen: dict[str, int] = {}
    for index, name in enumerate(header, start=1):
        if name in seen:
            raise TranscriptFileError(
                f"{source}: line {line} (header): column '{name}' appears twice (fields {seen[name]} and {index})"
            )
        seen[name] = index
    return header


def _field_count_message(source: str, label: str, header: list[str], record: list[str], delimiter: str, kind: str) -> str:
    where = f"{source}: {label}: expected {len(header)} fields as in the header ({', '.join(header)}), found {len(record)}"
    shown = "tab" if delimiter == "\t" else f"'{delimiter}'"
    if len(record) > len(header):
        extra = ", ".join(_preview(field) for field in record[len(header) :])
        return (
            f"{where}; beyond '{header[-1]}': {extra}: an unquoted {shown} inside a field? "
            f"Quote fields that contain {shown} (any {kind.upper()} writer does)"
        )
    return f"{where}; missing: {', '.join(header[len(record):])}"


def _check_multiline(source: str, label: str, header: list[str], record: list[str], delimiter: str) -> None:
    """A quoted field spanning lines is legal, but one whose later lines are whole rows is an
    unmatched quote that swallowed them (they would be lost as separate utterances)."""
    if len(header) < 2:
        return
    for field in record:
        for line in _LINE_BREAK.split(field)[1:]:
            if line.count(delimiter) == len(header) - 1:
                raise TranscriptFileError(
                    f"{source}: {label}: a quoted field runs over several lines and contains what looks "
                    f"like a whole row ({_preview(line)}): an unmatched '\"' at the start of a field? "
                    "(If the line break is real, store the file as JSONL.)"
                )


_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what the csv module reads as the end of a line


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _hf_rows(source: str, split: str) -> RowTable:
    dataset_id = source[len(HF_PREFIX) :].strip()
    if not dataset_id:
        raise TranscriptFileError(f"{source}: no dataset id after '{HF_PREFIX}' (expected {HF_PREFIX}org/name)")
    return read_hf_rows(dataset_id, split)


# --- building transcripts --------------------------------------------------------------------


def detect_format(columns: Iterable[str]) -> str:
    return "annomi" if set(ANNOMI_COLUMNS) <= set(columns) else "generic"


def transcripts_from_rows(
    source: str,
    table: RowTable,
    transcript_format: str = "auto",
    mapping: dict[str, str] | None = None,
    speakers: dict[str, str] | None = None,
) -> list[Transcript]:
    """Group utterance rows into transcripts, validating every row."""
    columns, rows = table.columns, table.rows
    mapping, speakers = check_column_map(mapping), check_speaker_map(speakers)
    fmt = detect_format(columns) if transcript_format == "auto" else transcript_format
    if fmt == "annomi":
        if mapping:
            raise TaskArgumentError(
                f"columns mapping applies to the generic format only; {source} is read as AnnoMI "
                "(pass -T transcript_format=generic to map its columns)"
            )
        missing = [c for c in ANNOMI_COLUMNS if c not in columns]
        if missing:
            raise TranscriptFileError(
                f"{source}: missing AnnoMI column(s): {', '.join(missing)} ({table.columns_from}); "
                "to read it as the generic format, pass -T transcript_format=generic"
            )
        field_map = dict(ANNOMI_MAPPING)
    else:
        field_map = {field: field for field in (*GENERIC_FIELDS, "client_id")} | mapping
        # client_id is optional, unless the user named a column for it
        required = (*GENERIC_FIELDS, "client_id") if "client_id" in mapping else GENERIC_FIELDS
        missing = [f"{field_map[f]}" + (f" (for {f})" if field_map[f] != f else "") for f in required if field_map[f] not in columns]
        if missing:
            raise TranscriptFileError(
                f"{source}: missing column(s): {', '.join(missing)}; found: {', '.join(columns) or 'none'} "
                f"({table.columns_from}); name the file's columns with -T columns=..., e.g. {COLUMNS_EXAMPLE}"
            )
    speaker_map = {k.lower(): v for k, v in (DEFAULT_SPEAKERS | speakers).items()}
    used = set(field_map.values())

    grouped: dict[str, list[Utterance]] = defaultdict(list)
    clients: dict[str, str] = {}
    labels: dict[str, dict[str, Any]] = {}
    for row_label, row in rows:
        where = f"{source}: {row_label}"
        tid = _cell(row, field_map["transcript_id"], where)
        turn_text = _cell(row, field_map["turn"], where)
        if not _TURN.fullmatch(turn_text):
            raise TranscriptFileError(f"{where}: field '{field_map['turn']}': not an integer turn order: {turn_text!r}")
        turn = int(turn_text.split(".")[0])
        raw_speaker = _cell(row, field_map["speaker"], where)
        speaker = speaker_map.get(raw_speaker.lower())
        if speaker not in ("therapist", "client"):
            raise TranscriptFileError(
                f"{where}: field '{field_map['speaker']}': unknown speaker label {raw_speaker!r} "
                f"(known: {', '.join(sorted(speaker_map))}); map the file's labels with -T speakers=..., "
                f"e.g. {SPEAKERS_EXAMPLE}"
            )
        text = _cell(row, field_map["text"], where, text_only=True)
        client_col = field_map["client_id"]
        client = _cell(row, client_col, where) if _present(row.get(client_col)) else tid
        if tid in clients and clients[tid] != client:
            raise TranscriptFileError(f"{where}: field '{client_col}': transcript {tid} has two client ids")
        clients[tid] = client
        extra = {k: v for k, v in row.items() if k not in used and k is not None}
        if tid not in labels:
            labels[tid] = dict(extra)
        else:  # transcript-level labels are those constant within the transcript
            labels[tid] = {k: v for k, v in labels[tid].items() if extra.get(k) == v}
        grouped[tid].append(Utterance(turn=turn, speaker=speaker, text=text, row=row_label, labels=extra))

    if not grouped:
        raise TranscriptFileError(f"{source}: no utterances found")
    transcripts = []
    for tid, utterances in grouped.items():
        utterances.sort(key=lambda u: u.turn)  # stable: the first of equal turns stays first
        unique: list[Utterance] = []
        for utterance in utterances:
            previous = unique[-1] if unique else None
            if previous is None or previous.turn != utterance.turn:
                unique.append(utterance)
            elif not (fmt == "annomi" and (previous.speaker, previous.text) == (utterance.speaker, utterance.text)):
                # AnnoMI-full repeats each utterance once per annotator; anything else is an error
                raise TranscriptFileError(
                    f"{source}: {utterance.row}: field '{field_map['turn']}': turn {utterance.turn} "
                    f"appears twice in transcript {tid} (also {previous.row})"
                )
        utterances = unique
        kept = {k: v for k, v in labels[tid].items() if fmt != "annomi" or k in ANNOMI_TRANSCRIPT_LABELS}
        if fmt == "annomi":
            kept["video_url"] = clients[tid]
        transcripts.append(
            Transcript(id=tid, client_id=clients[tid], utterances=utterances, labels=kept, source=source)
        )
    return transcripts


# a whole number: "3", "-1", or "3.0" as spreadsheet and pandas exports write it
_TURN = re.compile(r"[+-]?[0-9]+(\.0*)?")


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _cell(row: dict[str, Any], column: str, where: str, text_only: bool = False) -> str:
    """A required value as stripped text. JSON rows may hold numbers where a label is
    expected (ids, turns), but never lists or objects; ``text_only`` also rejects numbers."""
    if column not in row:
        raise TranscriptFileError(f"{where}: field '{column}': missing")
    value = row[column]
    allowed = (str,) if text_only else (str, int, float)
    if value is not None and (not isinstance(value, allowed) or isinstance(value, bool)):
        raise TranscriptFileError(
            f"{where}: field '{column}': expected {'text' if text_only else 'text or a number'}, "
            f"found {type(value).__name__} {_preview(json.dumps(value, default=str))}"
        )
    text = "" if value is None else str(value).strip()
    if not text:
        raise TranscriptFileError(f"{where}: field '{column}': empty")
    if problem := control_character(text):
        raise TranscriptFileError(f"{where}: field '{column}': {problem}")
    return text


def check_column_map(columns: Any) -> dict[str, str]:
    """The ``columns`` task argument: our field names to the file's column names."""
    if columns is None:
        return {}
    fields = (*GENERIC_FIELDS, "client_id")
    if not isinstance(columns, dict):
        raise TaskArgumentError(f"columns must be a mapping, e.g. {COLUMNS_EXAMPLE}; got {columns!r}")
    unknown = [str(k) for k in columns if k not in fields]
    if unknown:
        raise TaskArgumentError(
            f"columns mapping has unknown field(s): {', '.join(sorted(unknown))} (known: {', '.join(fields)}); "
            f"the keys are our fields, the values the file's columns, e.g. {COLUMNS_EXAMPLE}"
        )
    bad = [f"{k}: {v!r}" for k, v in columns.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise TaskArgumentError(
            f"columns mapping: expected a column name for each field; got {', '.join(bad)}; e.g. {COLUMNS_EXAMPLE}"
        )
    return {k: v.strip() for k, v in columns.items()}


def check_speaker_map(speakers: Any) -> dict[str, str]:
    """The ``speakers`` task argument: the file's speaker labels to ``therapist``/``client``."""
    if speakers is None:
        return {}
    if not isinstance(speakers, dict):
        raise TaskArgumentError(f"speakers must be a mapping, e.g. {SPEAKERS_EXAMPLE}; got {speakers!r}")
    bad = [f"{k}: {v!r}" for k, v in speakers.items() if v not in ("therapist", "client")]
    if bad:
        raise TaskArgumentError(
            f"speakers mapping: each label must map to therapist or client; got {', '.join(bad)}; e.g. {SPEAKERS_EXAMPLE}"
        )
    # YAML reads a label such as 1 or yes as a number or boolean; the file's labels are text
    return {str(k): v for k, v in speakers.items()}


def load_transcripts(
    source: str | None = None,
    transcript_format: str = "auto",
    columns: dict[str, str] | None = None,
    speakers: dict[str, str] | None = None,
    split: str = "train",
) -> list[Transcript]:
    """Load transcripts from a local file or URL (CSV/TSV/JSONL), or a Hugging Face dataset.

    Args:
        source: A local path or an ``http(s)://`` URL; ``hf:org/name`` for a Hugging Face
            dataset (only this explicit form goes to the hub: a mistyped local path is "file
            not found" at once, never a network request); ``None`` loads the shipped demo set
            (fictional transcripts written for this project).
        transcript_format: ``auto``, ``annomi`` or ``generic``.
        columns: Generic format: our field names to the file's column names.
        speakers: The file's speaker labels to ``therapist``/``client``.
        split: Split of a Hugging Face dataset.

    Raises:
        TranscriptFileError: Unusable input; the message names the source, the row or line
            and the field.
    """
    if transcript_format not in TRANSCRIPT_FORMATS:
        raise TaskArgumentError(f"transcript_format must be one of {', '.join(TRANSCRIPT_FORMATS)}; got {transcript_format!r}")
    source = str(DEFAULT_TRANSCRIPTS) if source is None else str(source)
    table = _hf_rows(source, split) if source.startswith(HF_PREFIX) else read_rows(source)
    return transcripts_from_rows(source, table, transcript_format, columns, speakers)


def read_hf_rows(dataset_id: str, split: str) -> RowTable:
    """Rows of a Hugging Face dataset (one utterance per row) via the ``datasets`` library."""
    import datasets  # the Hugging Face library (our datasets/ folder is data only)

    try:
        dataset = datasets.load_dataset(dataset_id, split=split)
    except Exception as ex:  # the library raises many types: report them all the same way
        raise TranscriptFileError(f"{dataset_id}: cannot load Hugging Face dataset (split {split!r}): {ex}") from ex
    rows = [(f"row {index}", dict(record)) for index, record in enumerate(dataset, start=1)]
    return RowTable(list(dataset.column_names), rows, "dataset columns")
