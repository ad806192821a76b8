"""Medical entities and ICD-10-CM candidates from a call's transcript: the only place that talks to
Amazon Comprehend Medical (DetectEntitiesV2, InferICD10CM).

- English only (the service's documentation): send only English transcripts; other languages come
  back with few or wrong entities, not with an error.
- Not offered in eu-central-1 (botocore's endpoint data lists eu-west-1 and eu-west-2 in the EU): the
  client is built for eu-west-1, so transcript text is processed there.
- Limits (botocore service model, the Text member's length): DetectEntitiesV2 takes 1..20,000
  characters, InferICD10CM 1..10,000; more is TextSizeLimitExceededException. The service bills per
  100 characters with a 1-unit minimum per request, so the transcript is sent as the fewest, fullest
  chunks (`chunk_segments`): whole segments joined with "\\n", never cut, so no entity is cut either.
- Offsets: each entity's BeginOffset/EndOffset (code points in the chunk, which are Python `str`
  indices) is mapped back to its segment and to offsets within that segment's text, so that
  `entity.text == segment.text[entity.begin:entity.end]`. An entity that crosses a segment boundary
  (one speaker's words run into the next's), or whose Text does not match its offsets, is dropped
  and counted, never guessed.
- Entities: DetectEntitiesV2's entities and, as entities of their own, their attributes (the DOSAGE
  "10 mg" of a MEDICATION, a SYSTEM_ORGAN_SITE, ...) and the unmapped attributes, each once.
- ICD-10-CM: the top-scoring concept of each detected condition. A NEGATED condition ("denies chest
  pain") gives no candidate: a code for what the patient does not have has no place in the record
  (its entity, with the NEGATION trait, is still among the entities).
- PaginationToken: the model returns one on a truncated result but has no request member to send it
  back, so a truncated result is logged (count only) and kept as it is.
- Errors: TooManyRequestsException (the model's throttling code; ThrottlingException too) is retried
  with backoff by AwsCaller; anything else, and throttling that persists, is
  MedicalExtractionUnavailable (503, Retry-After). Codes are logged, never AWS's messages, and the
  transcript text is never logged: counts only.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from videocall.core.aws import AwsCaller, retry_after_seconds
from videocall.core.errors import ServiceUnavailable
from videocall.core.observability import count_failure, logger

DETECT_ENTITIES_MAX_CHARS = 20_000  # DetectEntitiesV2 Text (BoundedLengthString) max
INFER_ICD10CM_MAX_CHARS = 10_000  # InferICD10CM Text (OntologyLinkingBoundedLengthString) max
SEPARATOR = "\n"
_THROTTLED = frozenset({"TooManyRequestsException", "ThrottlingException"})


class MedicalExtractionUnavailable(ServiceUnavailable):
    code = "medical_extraction_unavailable"
    message = "Medical entity extraction is unavailable right now; retry later."


class ComprehendMedicalClient(Protocol):
    def detect_entities_v2(self, **kwargs: Any) -> dict[str, Any]: ...
    def infer_icd10_cm(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SegmentText:
    """One turn of the transcript."""

    sequence: int
    text: str


@dataclass(frozen=True)
class Chunk:
    """The text of one request, and where each segment (or piece of one) sits in it:
    (segment sequence, start offset in `text`, end offset in `text`), in order."""

    text: str
    spans: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class Entity:
    segment_sequence: int
    category: str  # MEDICAL_CONDITION, MEDICATION, TEST_TREATMENT_PROCEDURE, ...
    type: str  # DX_NAME, GENERIC_NAME, DOSAGE, TEST_NAME, ...
    text: str
    score: float
    traits: tuple[str, ...]  # NEGATION, SYMPTOM, DIAGNOSIS, ...
    begin: int  # offsets within the segment's text: text == segment.text[begin:end]
    end: int


@dataclass(frozen=True)
class Icd10Candidate:
    segment_sequence: int
    code: str
    description: str
    score: float  # the concept's score
    text: str
    begin: int  # offsets within the segment's text
    end: int


@dataclass(frozen=True)
class Extraction:
    entities: list[Entity]
    icd10: list[Icd10Candidate]
    calls: int  # requests answered (one per chunk and operation); retries are in gateway.caller.calls
    characters: int  # characters sent in those requests: what is billed (per 100, 1-unit minimum each)


def chunk_segments(segments: Sequence[SegmentText], limit: int) -> list[Chunk]:
    """Pack segments, in order, into as few chunks as possible, each at most `limit` characters
    ("\\n" separators included). Greedy: a chunk takes whole segments while the next one fits, which
    for segments kept in order is the fewest chunks. Empty and whitespace-only segments are skipped.

    Chunks are cut only between segments. The one exception: a single segment longer than `limit` is
    split into pieces of at most `limit` characters, each cut just after the last whitespace within
    the limit (hard at the limit when a piece has no whitespace at all), and the pieces are packed like
    segments. A word is never cut, but an entity that spans the cut can be lost. Every piece keeps its
    segment's sequence, and its span's offsets are the piece's place in its chunk. The pieces are
    contiguous (joined in chunk order they give the segment's text back), so a piece's offset within
    its segment is the total length of that segment's pieces before it.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    chunks: list[Chunk] = []
    parts: list[tuple[int, str]] = []
    size = 0
    for segment in segments:
        if not segment.text.strip():
            continue
        for piece in _pieces(segment.text, limit):
            needed = len(piece) + (len(SEPARATOR) if parts else 0)
            if parts and size + needed > limit:
                chunks.append(_join(parts))
                parts, size, needed = [], 0, len(piece)
            parts.append((segment.sequence, piece))
            size += needed
    if parts:
        chunks.append(_join(parts))
    return chunks


def _pieces(text: str, limit: int) -> list[str]:
    pieces: list[str] = []
    start = 0
    while len(text) - start > limit:
        cut = start + limit
        for i in range(start + limit - 1, start - 1, -1):
            if text[i].isspace():
                cut = i + 1
                break
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def _join(parts: list[tuple[int, str]]) -> Chunk:
    spans: list[tuple[int, int, int]] = []
    offset = 0
    for sequence, piece in parts:
        spans.append((sequence, offset, offset + len(piece)))
        offset += len(piece) + len(SEPARATOR)
    return Chunk(SEPARATOR.join(piece for _, piece in parts), tuple(spans))


def _translate(operation: str, exc: ClientError, code: str) -> Exception:
    logger.warning("comprehend medical call failed", extra={"operation": operation, "error_code": code})
    count_failure(f"medical_{code or 'error'}")
    return MedicalExtractionUnavailable(retry_after=retry_after_seconds(exc) if code in _THROTTLED else 5)


def _unreachable() -> Exception:
    count_failure("comprehend_medical_unreachable")
    return MedicalExtractionUnavailable()


@dataclass
class _Tally:
    calls: int = 0
    characters: int = 0
    truncated: int = 0


@dataclass(frozen=True)
class _Placed:
    """One span of a chunk, with where its piece starts within its segment's text."""

    sequence: int
    start: int
    end: int
    base: int


class _Mapper:
    """Chunk offsets -> (segment sequence, offsets within the segment, text)."""

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self.chunks = chunks
        self.dropped = 0
        self._placed: list[list[_Placed]] = []
        cursor: dict[int, int] = {}
        for chunk in chunks:
            row: list[_Placed] = []
            for sequence, start, end in chunk.spans:
                base = cursor.get(sequence, 0)
                row.append(_Placed(sequence, start, end, base))
                cursor[sequence] = base + end - start
            self._placed.append(row)
        self._starts = [[p.start for p in row] for row in self._placed]

    def locate(self, index: int, item: dict[str, Any]) -> tuple[int, int, int, str] | None:
        text = self.chunks[index].text
        begin, end = item.get("BeginOffset"), item.get("EndOffset")
        if not isinstance(begin, int) or not isinstance(end, int) or not 0 <= begin < end <= len(text):
            self.dropped += 1
            return None
        at = bisect.bisect_right(self._starts[index], begin) - 1
        placed = self._placed[index][at] if at >= 0 else None
        found = text[begin:end]
        if placed is None or end > placed.end or ("Text" in item and item["Text"] != found):
            self.dropped += 1  # across a segment boundary, on a separator, or offsets that don't match
            return None
        return placed.sequence, placed.base + begin - placed.start, placed.base + end - placed.start, found


def _trait_names(traits: Iterable[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(t["Name"]) for t in traits if "Name" in t))


class ComprehendMedicalGateway:
    def __init__(self, client: ComprehendMedicalClient, *, sleep: Callable[[float], None] = time.sleep) -> None:
        """`client`: boto3's "comprehendmedical" client for eu-west-1, or videocall.local's stand-in."""
        self._client = client
        self.caller = AwsCaller(
            service="comprehend medical",
            throttle_codes=_THROTTLED,
            translate=_translate,
            unreachable=_unreachable,
            sleep=sleep,
        )

    def extract(self, segments: Sequence[SegmentText], *, icd10: bool = True) -> Extraction:
        sequences = [segment.sequence for segment in segments]
        if len(set(sequences)) != len(sequences):
            raise ValueError("segment sequences must be unique")
        order = {sequence: i for i, sequence in enumerate(sequences)}
        tally = _Tally()

        entities: dict[tuple[int, int, int, str, str], Entity] = {}
        mapper = _Mapper(chunk_segments(segments, DETECT_ENTITIES_MAX_CHARS))
        for index, chunk in enumerate(mapper.chunks):
            response = self._send("detect_entities_v2", chunk, tally)
            for item in response.get("Entities", []):
                category = str(item.get("Category", ""))
                self._add_entity(entities, mapper, index, item, category)
                for attribute in item.get("Attributes", []):
                    self._add_entity(entities, mapper, index, attribute, str(attribute.get("Category", category)))
            for unmapped in response.get("UnmappedAttributes", []):
                attribute = unmapped.get("Attribute", {})
                self._add_entity(
                    entities, mapper, index, attribute, str(attribute.get("Category", unmapped.get("Type", "")))
                )
        dropped = mapper.dropped

        candidates: list[Icd10Candidate] = []
        negated = 0
        if icd10:
            mapper = _Mapper(chunk_segments(segments, INFER_ICD10CM_MAX_CHARS))
            for index, chunk in enumerate(mapper.chunks):
                for item in self._send("infer_icd10_cm", chunk, tally).get("Entities", []):
                    concepts = [c for c in item.get("ICD10CMConcepts", []) if c.get("Code")]
                    if not concepts:
                        continue
                    if "NEGATION" in _trait_names(item.get("Traits", [])):
                        negated += 1
                        continue
                    located = mapper.locate(index, item)
                    if located is None:
                        continue
                    sequence, begin, end, text = located
                    best = max(concepts, key=lambda concept: float(concept.get("Score", 0.0)))
                    candidates.append(
                        Icd10Candidate(
                            segment_sequence=sequence,
                            code=str(best["Code"]),
                            description=str(best.get("Description", "")),
                            score=float(best.get("Score", 0.0)),
                            text=text,
                            begin=begin,
                            end=end,
                        )
                    )
            dropped += mapper.dropped

        found = sorted(entities.values(), key=lambda e: (order[e.segment_sequence], e.begin, e.end, e.category, e.type))
        candidates.sort(key=lambda c: (order[c.segment_sequence], c.begin, c.end))
        if tally.truncated:
            logger.warning("comprehend medical result truncated", extra={"truncated": tally.truncated})
        logger.info(
            "medical extraction",
            extra={
                "segments": len(segments),
                "calls": tally.calls,
                "characters": tally.characters,
                "entities": len(found),
                "icd10_candidates": len(candidates),
                "negated_conditions": negated,
                "dropped": dropped,
            },
        )
        return Extraction(entities=found, icd10=candidates, calls=tally.calls, characters=tally.characters)

    def _send(self, operation: str, chunk: Chunk, tally: _Tally) -> dict[str, Any]:
        response = self.caller.call(self._client, operation, Text=chunk.text)
        tally.calls += 1
        tally.characters += len(chunk.text)
        tally.truncated += "PaginationToken" in response
        return response

    @staticmethod
    def _add_entity(
        entities: dict[tuple[int, int, int, str, str], Entity],
        mapper: _Mapper,
        index: int,
        item: dict[str, Any],
        category: str,
    ) -> None:
        located = mapper.locate(index, item)
        if located is None:
            return
        sequence, begin, end, text = located
        kind = str(item.get("Type", ""))
        key = (sequence, begin, end, category, kind)
        if key not in entities:  # an attribute shared by two entities ("10 mg" of two drugs) comes once
            entities[key] = Entity(
                segment_sequence=sequence,
                category=category,
                type=kind,
                text=text,
                score=float(item.get("Score", 0.0)),
                traits=_trait_names(item.get("Traits", [])),
                begin=begin,
                end=end,
            )
