"""A call's transcript from what Chime SDK live transcription leaves in S3: parse, then assemble into turns.

With a media capture pipeline running, Chime writes the transcript events under `transcription-messages/`
as JSON, and a concatenation pipeline joins them into one `.txt` file. AWS does not publish that format, so
the parser reads the documented client-side shape of a transcript event and is lenient about the rest:

- one JSON value per line, several values on one line (`{...}{...}`), a line holding an array of events,
  or (`parse_transcription_file`) a whole file that is one JSON array or one object;
- keys in camelCase or PascalCase (`resultId` / `ResultId`, matched without regard to case);
- the event bare (`{"transcript": {"results": [...]}}`, `{"results": [...]}`) or wrapped
  (`{"type": "Transcript", "transcriptEvent": {...}}`);
- numbers as JSON numbers or as strings of digits (the protobuf JSON mapping writes int64 that way), and a
  missing `isPartial` read as final (proto3 JSON leaves false out);
- status events (`{"transcriptionStatus": {...}}`, `{"type": "TranscriptionStatus", ...}`, or the bare
  status with `type` started/interrupted/resumed/stopped/failed and `eventTimeMs`) are counted, not kept.

A line that is not JSON, or holds something that is neither a transcript nor a status event, or a result
that lacks an id or times, counts once in `malformed_lines`; whatever valid results it also holds are kept.
Blank lines are ignored. Partial results are counted and dropped; of the final results the last one with
text per `resultId` is kept (an at-least-once writer may repeat a final, a later final may correct one).

Only the first alternative of a result is read (Transcribe's best). A result's speaker is the attendee of
most of its pronunciation items (crosstalk can put a word of the other talker in a result).

Chime transcribes only the two most active talkers at any moment, so with three or more people in the
call, speech may be missing from the transcript: `Transcript.partial_coverage` says so.

Plain functions over plain values: no I/O. Same input, same output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ParseReport",
    "Result",
    "Role",
    "Segment",
    "Speaker",
    "Transcript",
    "assemble",
    "parse_transcription_file",
    "parse_transcription_messages",
]

Role = Literal["provider", "patient", "participant"]

_STATUS_EVENT_TYPES = frozenset({"transcriptionstatus", "transcriptionstatusevent"})
_STATUS_TYPES = frozenset({"started", "interrupted", "resumed", "stopped", "failed"})
_WRAPPER_KEYS = ("transcriptevent", "transcript", "event")  # where a writer may have put the event
_MAX_WRAPPING = 4
_PIPELINE_PREFIXES = ("aws:", "mediapipeline")  # ExternalUserId of the media pipeline's attendee, lower case


@dataclass(frozen=True)
class Result:
    """One final transcription result."""

    result_id: str
    start_ms: int
    end_ms: int
    attendee_id: str | None
    external_user_id: str | None
    text: str
    confidence: float | None  # mean of the pronunciation items' confidences, None when none given


@dataclass(frozen=True)
class ParseReport:
    results: list[Result]  # final results only, the last final per resultId, sorted by (start_ms, end_ms, result_id)
    malformed_lines: int  # lines that are not JSON or not a transcript/status object: skipped and counted
    partial_results: int  # partial results seen (dropped)
    status_lines: int


@dataclass(frozen=True)
class Speaker:
    user_id: str | None
    role: Role


@dataclass(frozen=True)
class Segment:
    """One turn: consecutive results of one speaker merged."""

    sequence: int  # 1, 2, 3 ... in time order
    start_ms: int
    end_ms: int
    speaker_user_id: str | None
    speaker_role: Role
    attendee_id: str | None
    text: str  # the results' texts joined with single spaces
    confidence: float | None  # mean of the merged results' confidences (None if none had one)
    result_ids: tuple[str, ...]


@dataclass(frozen=True)
class Transcript:
    segments: list[Segment]
    people_heard: int  # distinct speakers (by user id, else attendee id) among the segments
    partial_coverage: bool  # more than two people spoke: Chime transcribes only the two most active talkers
    text: str  # one line per turn: "<role>: <text>"


# --- parsing -------------------------------------------------------------------------------------------------


def parse_transcription_messages(lines: Iterable[str | bytes]) -> ParseReport:
    """Parse transcript JSON lines. An element holding newlines (a whole file) is split into its lines."""
    reader = _Reader()
    chunks: Iterable[Any] = [lines] if isinstance(lines, str | bytes | bytearray) else lines
    for chunk in chunks:
        for line in _lines_of(chunk):
            reader.line(line)
    return reader.report()


def parse_transcription_file(data: bytes | str) -> ParseReport:
    """Parse a whole transcript file: JSON lines, or one JSON array of events (or one event)."""
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            return parse_transcription_messages([bytes(data)])  # line by line: only the bad lines are lost
    else:
        text = data
    body = text.strip().lstrip("\ufeff").strip()
    if body.startswith(("[", "{")):
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            pass  # not one JSON document: JSON lines
        else:
            reader = _Reader()
            for event in document if isinstance(document, list) else [document]:
                reader.unit([event], clean=True)
            return reader.report()
    return parse_transcription_messages([text])


def _lines_of(chunk: Any) -> Iterator[str | None]:
    """The lines of one element; None for a line that cannot be text."""
    if isinstance(chunk, bytes | bytearray):
        for raw in bytes(chunk).split(b"\n"):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                yield None
    elif isinstance(chunk, str):
        yield from chunk.split("\n")  # not splitlines(): JSON text may hold U+2028 and friends unescaped
    else:
        yield None


class _Reader:
    def __init__(self) -> None:
        self._finals: dict[str, Result] = {}
        self.malformed = 0
        self.partials = 0
        self.statuses = 0

    def line(self, line: str | None) -> None:
        if line is None:
            self.malformed += 1
            return
        text = line.strip().lstrip("\ufeff").strip()
        if not text:
            return
        values, clean = _decode_all(text)
        events: list[Any] = []
        for value in values:
            events.extend(value if isinstance(value, list) else [value])
        self.unit(events, clean=clean)

    def unit(self, events: list[Any], *, clean: bool) -> None:
        """The events of one line (or one element of a JSON array file): counted once if anything is wrong."""
        bad = not clean
        for event in events:
            kind, results = _classify(event, 0)
            if kind == "status":
                self.statuses += 1
            elif kind == "transcript":
                for raw in results:
                    outcome, result = _read_result(raw)
                    if outcome == "partial":
                        self.partials += 1
                    elif outcome == "invalid":
                        bad = True
                    elif result is not None:
                        self._finals[result.result_id] = result  # the last final wins
            else:
                bad = True
        if bad:
            self.malformed += 1

    def report(self) -> ParseReport:
        results = sorted(self._finals.values(), key=lambda r: (r.start_ms, r.end_ms, r.result_id))
        return ParseReport(results, self.malformed, self.partials, self.statuses)


def _decode_all(text: str) -> tuple[list[Any], bool]:
    """Every JSON value in the text, one after another; False when something that is not JSON remains."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    at, end = 0, len(text)
    while True:
        while at < end and text[at].isspace():
            at += 1
        if at >= end:
            return values, True
        try:
            value, at = decoder.raw_decode(text, at)
        except (ValueError, RecursionError):
            return values, False
        values.append(value)


def _fields(value: Any) -> dict[str, Any]:
    """An object's fields under lower-case keys (camelCase and PascalCase alike); {} for anything else."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(key, str):
            out.setdefault(key.lower(), item)
    return out


def _classify(value: Any, depth: int) -> tuple[str, list[Any]]:
    """("transcript", results) | ("status", []) | ("other", [])."""
    if not isinstance(value, dict) or depth > _MAX_WRAPPING:
        return "other", []
    fields = _fields(value)
    results = fields.get("results")
    if isinstance(results, list):
        return "transcript", results
    kind = fields.get("type")
    kind = kind.lower() if isinstance(kind, str) else ""
    if isinstance(fields.get("transcriptionstatus"), dict) or kind in _STATUS_EVENT_TYPES:
        return "status", []
    for key in _WRAPPER_KEYS:
        if isinstance(fields.get(key), dict):
            found = _classify(fields[key], depth + 1)
            if found[0] != "other":
                return found
    if kind in _STATUS_TYPES and "eventtimems" in fields:
        return "status", []
    return "other", []


def _read_result(raw: Any) -> tuple[str, Result | None]:
    """("partial", None) | ("invalid", None) | ("final", Result, or None when it has no text)."""
    if not isinstance(raw, dict):
        return "invalid", None
    fields = _fields(raw)
    if _flag(fields.get("ispartial")):
        return "partial", None
    result_id = fields.get("resultid")
    if not isinstance(result_id, str) or not result_id.strip():
        return "invalid", None
    alternatives = fields.get("alternatives")
    first = _fields(alternatives[0]) if isinstance(alternatives, list) and alternatives else {}
    raw_items = first.get("items")
    items = [_fields(i) for i in raw_items if isinstance(i, dict)] if isinstance(raw_items, list) else []
    starts = [t for t in (_ms(i.get("starttimems")) for i in items) if t is not None]
    ends = [t for t in (_ms(i.get("endtimems")) for i in items) if t is not None]
    start = _ms(fields.get("starttimems"))
    end = _ms(fields.get("endtimems"))
    start = start if start is not None else min(starts, default=None)
    end = end if end is not None else max(ends, default=None)
    if start is None or end is None:
        return "invalid", None
    transcript = first.get("transcript")
    text = " ".join(transcript.split()) if isinstance(transcript, str) else ""
    if not text:
        text = _join(items)
    if not text:
        return "final", None
    spoken = [i for i in items if not _is_punctuation(i)]
    attendee_id, external_user_id = _majority_attendee(spoken) or _majority_attendee(items) or (None, None)
    confidences = [c for c in (_confidence(i.get("confidence")) for i in spoken) if c is not None]
    confidence = sum(confidences) / len(confidences) if confidences else None
    text = text.replace("\x00", "")  # PostgreSQL text cannot hold NUL; it is never speech
    if not text.strip():
        return "final", None
    return "final", Result(result_id, start, max(start, end), attendee_id, external_user_id, text, confidence)


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


_MAX_MS = 2**63 - 1  # a time the database can hold (bigint); anything larger is not a time


def _ms(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        number = round(value) if math.isfinite(value) else None
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdecimal():
        number = int(value.strip())
    return number if number is not None and 0 <= number <= _MAX_MS else None


def _confidence(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and 0.0 <= number <= 1.0 else None


def _is_punctuation(item: dict[str, Any]) -> bool:
    kind = item.get("type")
    return isinstance(kind, str) and kind.strip().lower() == "punctuation"


def _join(items: list[dict[str, Any]]) -> str:
    """Items' contents: words separated by spaces, punctuation attached to what precedes it."""
    out = ""
    for item in items:
        content = item.get("content")
        if not isinstance(content, str) or not content.strip():
            continue
        content = " ".join(content.split())
        out += content if not out or _is_punctuation(item) else " " + content
    return out


def _item_attendee(item: dict[str, Any]) -> tuple[str | None, str | None]:
    attendee = _fields(item.get("attendee"))
    attendee_id = attendee.get("attendeeid", item.get("attendeeid"))
    external = attendee.get("externaluserid", item.get("externaluserid"))
    return (
        attendee_id if isinstance(attendee_id, str) and attendee_id else None,
        external if isinstance(external, str) and external else None,
    )


def _majority_attendee(items: list[dict[str, Any]]) -> tuple[str | None, str | None] | None:
    """The attendee of most of the items; on a tie, the one whose first item comes first. None if no attendee."""
    votes: dict[tuple[str, str], int] = {}
    who: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    for item in items:
        attendee_id, external = _item_attendee(item)
        if attendee_id is None and external is None:
            continue
        key = ("attendee", attendee_id) if attendee_id is not None else ("external", external or "")
        votes[key] = votes.get(key, 0) + 1
        known = who.get(key)
        if known is None or (known[1] is None and external is not None):
            who[key] = (attendee_id, external)
    if not votes:
        return None
    return who[max(votes, key=lambda k: votes[k])]  # max keeps the first of equals: first seen wins a tie


# --- assembly ------------------------------------------------------------------------------------------------


def assemble(results: Sequence[Result], speakers: Mapping[str, Speaker], *, max_gap_ms: int = 0) -> Transcript:
    """Turns from final results. `speakers`: attendeeId -> Speaker, or "ext:" + externalUserId -> Speaker.

    Results of the media pipeline's attendee are dropped. Consecutive results of one speaker (same user id,
    else same attendee id) make one turn; with `max_gap_ms` > 0 a silence longer than that starts a new turn.
    """
    if max_gap_ms < 0:
        raise ValueError("max_gap_ms must be >= 0")
    turns: list[_Turn] = []
    for result in sorted(results, key=_result_order):
        if _is_pipeline(result.external_user_id):
            continue
        speaker = _speaker_of(result, speakers)
        identity = _identity(speaker, result)
        last = turns[-1] if turns else None
        if (
            last is not None
            and last.identity == identity
            and not (max_gap_ms and result.start_ms - last.end_ms > max_gap_ms)
        ):
            last.add(result)
        else:
            turns.append(_Turn(identity, speaker, result))
    segments = [turn.segment(n) for n, turn in enumerate(turns, start=1)]
    heard = {turn.identity for turn in turns if turn.identity[0] != "unknown"}
    return Transcript(
        segments=segments,
        people_heard=len(heard),
        partial_coverage=len(heard) > 2,
        text="\n".join(f"{s.speaker_role}: {s.text}" for s in segments),
    )


@dataclass
class _Turn:
    identity: tuple[str, str]
    speaker: Speaker
    first: Result
    results: list[Result] = field(default_factory=list)
    end_ms: int = 0

    def __post_init__(self) -> None:
        self.add(self.first)

    def add(self, result: Result) -> None:
        self.results.append(result)
        self.end_ms = max(self.end_ms, result.end_ms)

    def segment(self, sequence: int) -> Segment:
        confidences = [r.confidence for r in self.results if r.confidence is not None]
        return Segment(
            sequence=sequence,
            start_ms=self.first.start_ms,
            end_ms=self.end_ms,
            speaker_user_id=self.speaker.user_id,
            speaker_role=self.speaker.role,
            attendee_id=self.first.attendee_id,
            text=" ".join(r.text for r in self.results),
            confidence=sum(confidences) / len(confidences) if confidences else None,
            result_ids=tuple(r.result_id for r in self.results),
        )


def _result_order(r: Result) -> tuple[int, int, str, str, str, str, float]:
    # Beyond (start, end, id): ties broken on every field, so the input's order never shows in the output.
    confidence = -1.0 if r.confidence is None else r.confidence
    return (r.start_ms, r.end_ms, r.result_id, r.text, r.attendee_id or "", r.external_user_id or "", confidence)


def _is_pipeline(external_user_id: str | None) -> bool:
    return external_user_id is not None and external_user_id.strip().lower().startswith(_PIPELINE_PREFIXES)


def _speaker_of(result: Result, speakers: Mapping[str, Speaker]) -> Speaker:
    if result.attendee_id is not None and result.attendee_id in speakers:
        return speakers[result.attendee_id]
    if result.external_user_id is not None and f"ext:{result.external_user_id}" in speakers:
        return speakers[f"ext:{result.external_user_id}"]
    return Speaker(user_id=None, role="participant")


def _identity(speaker: Speaker, result: Result) -> tuple[str, str]:
    if speaker.user_id is not None:
        return ("user", speaker.user_id)
    if result.attendee_id is not None:
        return ("attendee", result.attendee_id)
    if result.external_user_id is not None:
        return ("external", result.external_user_id)
    return ("unknown", "")
