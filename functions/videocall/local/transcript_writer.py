"""What Chime writes under a capture's `transcription-messages/` while live transcription runs, acted
out locally: a short consultation in the voices of the meeting's first attendees (no real speech
exists here), with partial results followed by their finals and a status line, as JSON lines.

Clearly a stand-in: the words are a fixed script, the same for every local meeting.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

SCRIPT = (
    (0, "Good morning, what brings you in today?"),
    (1, "I've had chest pain for two days, mostly when I climb stairs."),
    (0, "Any shortness of breath?"),
    (1, "No shortness of breath. I take lisinopril 10 mg for hypertension."),
    (0, "Are you allergic to any medication?"),
    (1, "Penicillin."),
    (0, "We'll do an ECG and a troponin test today."),
    (2, "I will translate the plan for the family afterwards."),
)


def transcript_lines(attendees: list[dict[str, Any]], language: str, started_ms: int | None = None) -> list[str]:
    """JSON lines: a status line, then per utterance a partial result and its final (same resultId)."""
    start = started_ms or int(time.time() * 1000)
    lines = [json.dumps({"transcriptionStatus": {"type": "started", "eventTimeMs": start,
                                                 "transcriptionRegion": "local"}})]  # fmt: skip
    at = start + 1000
    people = [a for a in attendees if not a["ExternalUserId"].lower().startswith(("aws:", "mediapipeline"))]
    for speaker, text in SCRIPT:
        if speaker >= len(people):
            continue
        who = people[speaker]
        result_id = str(uuid.uuid4())
        end = at + 350 * len(text.split())
        words = text.split()
        for partial, final in ((" ".join(words[: max(1, len(words) // 2)]), False), (text, True)):
            items = [{"type": "pronunciation", "startTimeMs": at, "endTimeMs": end, "content": word,
                      "confidence": 0.95, "attendee": {"attendeeId": who["AttendeeId"],
                                                        "externalUserId": who["ExternalUserId"]}}
                     for word in partial.split()]  # fmt: skip
            lines.append(json.dumps({"transcript": {"results": [{
                "resultId": result_id, "isPartial": not final, "startTimeMs": at, "endTimeMs": end,
                "languageCode": language, "alternatives": [{"transcript": partial, "items": items}]}]}}))  # fmt: skip
        at = end + 400
    return lines


def writer(chime: Any, s3: Any) -> Callable[[str, str, str, dict[str, str] | None], None]:
    """The media-pipelines emulator's `before_stop` hook: write the transcript chunk of a meeting that
    was transcribed (chime: the meetings emulator, which knows who attended and the language)."""

    def write(meeting_id: str, bucket: str, prefix: str, sse: dict[str, str] | None) -> None:
        config = chime.transcribed.get(meeting_id)
        if config is None:
            return
        language = next(iter(config.values())).get("LanguageCode", "en-US")
        body = "\n".join(transcript_lines(chime.attendee_history.get(meeting_id, []), language)) + "\n"
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": sse["AwsKmsKeyId"]} if sse else {}
        key = f"{prefix.rstrip('/')}/transcription-messages/{time.strftime('%Y%m%d%H%M%S')}000.txt"
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="text/plain", **extra)

    return write
