"""Therapy transcript loaders for Experiment 2: AnnoMI CSV, a generic long format, HF datasets.

All loaders return :class:`Transcript` objects. Bad input raises :class:`TranscriptFileError`
naming the source, the row and the field; nothing half-read is returned.

Formats
-------
AnnoMI (CSV, recognised by its columns): ``transcript_id``, ``utterance_id`` (order within a
transcript), ``interlocutor`` (``therapist``/``client``), ``utterance_text``, ``mi_quality``,
``video_url`` (identifies the client), ``topic``; other columns are kept per utterance.

Generic long format (CSV or JSONL): one row per utterance with ``transcript_id``, ``turn``
(order), ``speaker``, ``text``, optional ``client_id``; every other column is kept as
transcript-level metadata when it is constant within a transcript. Other corpora map their
column names with ``columns={"transcript_id": "session", "turn": "idx", ...}`` and their speaker
labels with ``speakers={"T": "therapist", "C": "client"}``.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import BaseModel, Field

from psysim.personas import REPO_ROOT

DEFAULT_TRANSCRIPTS = REPO_ROOT / "datasets" / "transcripts" / "demo_transcripts.csv"

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

TranscriptFormat = Literal["auto", "annomi", "generic"]
TRANSCRIPT_FORMATS = ("auto", "annomi", "generic")


class TranscriptFileError(ValueError):
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


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _read_bytes(source: str) -> bytes:
    if _is_url(source):
        try:
            with urllib.request.urlopen(source, timeout=60) as response:  # noqa: S310 - user-given URL
                return response.read()
        except OSError as ex:
            raise TranscriptFileError(f"{source}: cannot download: {ex}") from ex
    path = Path(source).expanduser()
    if not path.is_file():
        raise TranscriptFileError(f"{source}: file not found")
    return path.read_bytes()


def _decode(source: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as ex:
        line = data[: ex.start].count(b"\n") + 1
        raise TranscriptFileError(
            f"{source}: line {line}: undecodable bytes at offset {ex.start} (expected UTF-8): {ex.reason}"
        ) from ex


def read_rows(source: str) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """Rows of a CSV or JSONL file (path or URL) as ``(row label, mapping)`` pairs."""
    text = _decode(source, _read_bytes(source))
    name = source.split("?")[0].lower()
    if name.endswith((".jsonl", ".ndjson")):
        rows: list[tuple[str, dict[str, Any]]] = []
        columns: dict[str, None] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            index = len(rows) + 1
            try:
                row = json.loads(line)
            except json.JSONDecodeError as ex:
                raise TranscriptFileError(f"{source}: line {number}: invalid JSON: {ex.msg}") from ex
            if not isinstance(row, dict):
                raise TranscriptFileError(f"{source}: line {number}: expected a JSON object")
            columns.update(dict.fromkeys(row))
            rows.append((f"row {index} (line {number})", row))
        return list(columns), rows
    if not name.endswith((".csv", ".tsv")):
        raise TranscriptFileError(f"{source}: unsupported file type (expected .csv, .tsv or .jsonl)")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if name.endswith(".tsv") else ",")
    rows = []
    try:
        for index, record in enumerate(reader, start=1):
            rows.append((f"row {index} (line {reader.line_num})", dict(record)))
    except csv.Error as ex:
        raise TranscriptFileError(f"{source}: line {reader.line_num}: malformed CSV: {ex}") from ex
    return list(reader.fieldnames or []), rows


# --- building transcripts --------------------------------------------------------------------


def detect_format(columns: Iterable[str]) -> str:
    return "annomi" if set(ANNOMI_COLUMNS) <= set(columns) else "generic"


def transcripts_from_rows(
    source: str,
    columns: list[str],
    rows: list[tuple[str, dict[str, Any]]],
    transcript_format: str = "auto",
    mapping: dict[str, str] | None = None,
    speakers: dict[str, str] | None = None,
) -> list[Transcript]:
    """Group utterance rows into transcripts, validating every row."""
    fmt = detect_format(columns) if transcript_format == "auto" else transcript_format
    if fmt == "annomi":
        missing = [c for c in ANNOMI_COLUMNS if c not in columns]
        if missing:
            raise TranscriptFileError(f"{source}: missing AnnoMI column(s): {', '.join(missing)}")
        field_map = dict(ANNOMI_MAPPING)
    else:
        field_map = {field: field for field in (*GENERIC_FIELDS, "client_id")} | (mapping or {})
        unknown = set(field_map) - {*GENERIC_FIELDS, "client_id"}
        if unknown:
            raise ValueError(f"columns mapping has unknown field(s): {', '.join(sorted(unknown))}")
        missing = [f"{field_map[f]}" + (f" (for {f})" if field_map[f] != f else "") for f in GENERIC_FIELDS if field_map[f] not in columns]
        if missing:
            raise TranscriptFileError(
                f"{source}: missing column(s): {', '.join(missing)}; found: {', '.join(columns) or 'none'}"
            )
    speaker_map = {k.lower(): v for k, v in (DEFAULT_SPEAKERS | (speakers or {})).items()}
    used = set(field_map.values())

    grouped: dict[str, list[Utterance]] = defaultdict(list)
    clients: dict[str, str] = {}
    labels: dict[str, dict[str, Any]] = {}
    for row_label, row in rows:
        where = f"{source}: {row_label}"
        tid = _cell(row, field_map["transcript_id"], where)
        turn_text = _cell(row, field_map["turn"], where)
        try:
            turn = int(float(turn_text)) if float(turn_text).is_integer() else None
        except ValueError:
            turn = None
        if turn is None:
            raise TranscriptFileError(f"{where}: field '{field_map['turn']}': not an integer turn order: {turn_text!r}")
        raw_speaker = _cell(row, field_map["speaker"], where)
        speaker = speaker_map.get(raw_speaker.lower())
        if speaker not in ("therapist", "client"):
            raise TranscriptFileError(
                f"{where}: field '{field_map['speaker']}': unknown speaker label {raw_speaker!r} "
                f"(known: {', '.join(sorted(speaker_map))}; map others with speakers=...)"
            )
        text = _cell(row, field_map["text"], where)
        client_col = field_map["client_id"]
        client = str(row.get(client_col) or "").strip() or tid
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


def _cell(row: dict[str, Any], column: str, where: str) -> str:
    value = row.get(column)
    text = "" if value is None else str(value).strip()
    if not text:
        raise TranscriptFileError(f"{where}: field '{column}': empty")
    return text


def load_transcripts(
    source: str | None = None,
    transcript_format: str = "auto",
    columns: dict[str, str] | None = None,
    speakers: dict[str, str] | None = None,
    split: str = "train",
) -> list[Transcript]:
    """Load transcripts from a file path or URL (CSV/TSV/JSONL) or a Hugging Face dataset id.

    ``None`` loads the shipped demo set (fictional transcripts written for this project).
    """
    if transcript_format not in TRANSCRIPT_FORMATS:
        raise ValueError(f"transcript_format must be one of {', '.join(TRANSCRIPT_FORMATS)}; got {transcript_format!r}")
    source = str(DEFAULT_TRANSCRIPTS) if source is None else str(source)
    if _is_url(source) or Path(source).expanduser().exists() or source.lower().endswith((".csv", ".tsv", ".jsonl", ".ndjson")):
        header, rows = read_rows(source)
    else:
        header, rows = read_hf_rows(source, split)
    return transcripts_from_rows(source, header, rows, transcript_format, columns, speakers)


def read_hf_rows(dataset_id: str, split: str) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """Rows of a Hugging Face dataset (one utterance per row) via the ``datasets`` library."""
    import datasets  # the Hugging Face library (our datasets/ folder is data only)

    try:
        dataset = datasets.load_dataset(dataset_id, split=split)
    except Exception as ex:  # the library raises many types: report them all the same way
        raise TranscriptFileError(f"{dataset_id}: cannot load Hugging Face dataset (split {split!r}): {ex}") from ex
    rows = [(f"row {index}", dict(record)) for index, record in enumerate(dataset)]
    return list(dataset.column_names), rows
