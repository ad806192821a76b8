"""Transcript assembly: Chime live-transcription JSON lines -> final results -> speaker turns.

The fixture is a ~3-minute consultation (provider, patient, interpreter) as a media capture pipeline leaves
it: status events at both ends, partial results followed by their finals, a truncated line, a PascalCase
line, a wrapped event, a final repeated, one result written late, and a result of the pipeline's attendee.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import pytest
from videocall.transcripts.assembly import (
    ParseReport,
    Result,
    Segment,
    Speaker,
    Transcript,
    assemble,
    parse_transcription_file,
    parse_transcription_messages,
)

FIXTURE = Path(__file__).parent / "fixtures" / "transcription_messages.jsonl"
T0 = 1795730400000

# Attendee ids, ExternalUserIds and our user ids of the people in the fixture's call.
PROVIDER_ATTENDEE = "3b9d2f4e-8a1c-4f6b-9d2e-7c5a1b0e4f21"
PATIENT_ATTENDEE = "a7e4c1d9-2b6f-4e3a-8c5d-0f9b1e2a3c47"
INTERPRETER_ATTENDEE = "e1f3a5c7-6d2b-4a9e-b8c0-4d1f2e3a5b69"
PIPELINE_ATTENDEE = "0c4e8a2f-5b1d-4c9e-a3f7-9b2d6e1c0a58"
PATIENT_EXTERNAL = "u_c2d8e1f49a3b4c7ea5d62e8f0b1c9d73"
PIPELINE_EXTERNAL = "aws:MediaPipeline-7d3e1a9c-4b2f-4e8d-a6c1-5f0b9e2d3c84"
PROVIDER_USER = "5b0e7c2a-4f1d-4a8e-b3c9-1d2e3f4a5b60"
PATIENT_USER = "c2d8e1f4-9a3b-4c7e-a5d6-2e8f0b1c9d73"
INTERPRETER_USER = "8f2a6c4e-1b3d-4e5f-9a7c-6e0d2b4f8a15"

# resultIds in the fixture
R1 = "a444cebc-6af5-5b68-9099-a98e64f52d00"  # provider, two partials before the final
R3 = "05c3f7c2-0615-5909-be63-cd6836ee65ae"  # provider
R4 = "8320ffc1-f0b6-500a-96d1-d4bfb63edd9a"  # provider, right after R3
R6 = "bc50f83a-9551-59a3-8a44-4c3f51a683d7"  # patient; its first word attributed to the interpreter
R7 = "681d4ff0-b8d0-543f-966b-2fc949e4a59d"  # the media pipeline's attendee
R9 = "7ca82543-5e62-578c-b7e3-7ba144294a55"  # patient, PascalCase line
R12 = "f7332bfa-3f2c-59c3-8e25-36f5ffdc0498"  # provider, final written twice
R14 = "a920e2a2-6581-5b67-bae7-e35ac09fd510"  # patient, items only (no alternative transcript)
R19 = "d3a20908-0b28-5120-b139-66495a873477"  # provider
R20 = "42253fa0-afb6-5b8c-acf1-5575aa2cb591"  # provider, 2.5 s after R19
R22 = "75ba5442-292a-5855-8016-626746a2063f"  # provider
R23 = "14f4f04e-0bec-59f9-8148-d94b61266664"  # provider, 0.4 s after R22

SPEAKERS = {
    PROVIDER_ATTENDEE: Speaker(PROVIDER_USER, "provider"),
    PATIENT_ATTENDEE: Speaker(PATIENT_USER, "patient"),
    INTERPRETER_ATTENDEE: Speaker(INTERPRETER_USER, "participant"),
}

EXPECTED_TEXT = """\
provider: Good morning, I'm Doctor Okafor. What brings you in today?
patient: I've had chest pain for two days.
provider: Can you describe the pain? Is it sharp, or more like a pressure?
participant: He says it feels like pressure in the middle of his chest.
patient: Yes, pressure. It comes and goes.
provider: Any shortness of breath?
patient: No shortness of breath.
provider: Do you take any medications?
patient: I take lisinopril 10 mg every morning.
provider: Any allergies to medications?
participant: He says he is allergic to penicillin. He got a rash.
patient: Yes, penicillin. A bad rash.
provider: Okay. Does the pain get worse when you walk or climb stairs?
patient: No, it's the same when I rest.
provider: Any fever, cough, or nausea?
participant: He says no fever and no cough.
provider: Okay. Your blood pressure today is 150 over 95, a bit high. I'd like to get an ECG and a troponin blood \
test today to rule out a heart problem.
participant: He asks if he should keep taking the lisinopril.
provider: Yes, keep taking lisinopril 10 mg once a day. If the pain gets worse or you feel short of breath, call \
emergency services right away.
patient: Okay. Thank you, doctor.
participant: He asks when the results will be ready.
provider: The troponin takes about an hour. I will call you with the results this afternoon.
patient: Thank you, bye."""


@pytest.fixture(scope="module")
def raw() -> str:
    return FIXTURE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def report(raw: str) -> ParseReport:
    return parse_transcription_messages(raw.splitlines())


@pytest.fixture(scope="module")
def transcript(report: ParseReport) -> Transcript:
    return assemble(report.results, SPEAKERS)


def by_id(report: ParseReport) -> dict[str, Result]:
    return {r.result_id: r for r in report.results}


def line(*results: dict) -> str:
    return json.dumps({"transcript": {"results": list(results)}})


def result(rid: str, start: int, end: int, items: list[dict], *, text: str | None = None, partial: bool = False):
    alternative: dict = {"items": items}
    if text is not None:
        alternative["transcript"] = text
    return {
        "resultId": rid,
        "isPartial": partial,
        "startTimeMs": start,
        "endTimeMs": end,
        "alternatives": [alternative],
    }


def word(content: str, attendee: str, external: str = "u_x", confidence: float | None = 0.9, kind="pronunciation"):
    item = {"type": kind, "content": content, "attendee": {"attendeeId": attendee, "externalUserId": external}}
    if confidence is not None:
        item["confidence"] = confidence
    return item


# --- parsing the fixture -------------------------------------------------------------------------------------


def test_report_counts(report: ParseReport):
    assert len(report.results) == 27  # 27 distinct finals, the pipeline's one included
    assert report.malformed_lines == 1  # the truncated line
    assert report.partial_results == 11
    assert report.status_lines == 2  # started, stopped


def test_final_texts_win_over_partials(report: ParseReport):
    results = by_id(report)
    assert results[R1].text == "Good morning, I'm Doctor Okafor. What brings you in today?"
    texts = [r.text for r in report.results]
    assert "I take lisinopril 10 mg every morning." in texts
    assert not any("listen" in t or t in {"Good morning", "Is it sharp", "Any shortness"} for t in texts)
    assert len(set(results)) == len(report.results)  # one per resultId: the repeated final of R12 once
    assert results[R12].text == "Any allergies to medications?"


def test_results_in_time_order(report: ParseReport):
    keys = [(r.start_ms, r.end_ms, r.result_id) for r in report.results]
    assert keys == sorted(keys)
    texts = [r.text for r in report.results]
    # In the file the interpreter's "no fever" final comes after the provider's next result; in time, before.
    assert texts.index("He says no fever and no cough.") + 1 == texts.index(
        "Okay. Your blood pressure today is 150 over 95, a bit high."
    )
    assert report.results[0].start_ms == T0 + 2000 and report.results[-1].end_ms == T0 + 166000


def test_pascal_case_line(report: ParseReport):
    r9 = by_id(report)[R9]
    assert (r9.text, r9.start_ms, r9.end_ms) == ("No shortness of breath.", T0 + 30900, T0 + 32600)
    assert (r9.attendee_id, r9.external_user_id) == (PATIENT_ATTENDEE, PATIENT_EXTERNAL)
    # words 0.99, 0.95, 0.98, 0.96; the full stop's 0.0 does not count
    assert r9.confidence == pytest.approx(0.97, abs=1e-9)


def test_wrapped_event_and_items_only_result(report: ParseReport):
    results = by_id(report)
    assert "Do you take any medications?" in [r.text for r in report.results]  # {"type": "Transcript", ...}
    assert results[R14].text == "Yes, penicillin. A bad rash."  # joined from items, no space before punctuation


def test_attendee_is_majority_of_words(report: ParseReport):
    r6 = by_id(report)[R6]
    assert r6.attendee_id == PATIENT_ATTENDEE  # "Yes" was heard as the interpreter, the other 5 words the patient
    assert by_id(report)[R7].external_user_id == PIPELINE_EXTERNAL


# --- assembling the fixture ----------------------------------------------------------------------------------


def test_turns_text_and_coverage(transcript: Transcript):
    assert transcript.text == EXPECTED_TEXT
    assert [s.sequence for s in transcript.segments] == list(range(1, 24))
    assert transcript.people_heard == 3
    assert transcript.partial_coverage is True


def test_speaker_attribution(transcript: Transcript):
    roles = [s.speaker_role for s in transcript.segments]
    assert roles[:6] == ["provider", "patient", "provider", "participant", "patient", "provider"]
    users = {s.speaker_role: set() for s in transcript.segments}
    for s in transcript.segments:
        users[s.speaker_role].add((s.speaker_user_id, s.attendee_id))
    assert users == {
        "provider": {(PROVIDER_USER, PROVIDER_ATTENDEE)},
        "patient": {(PATIENT_USER, PATIENT_ATTENDEE)},
        "participant": {(INTERPRETER_USER, INTERPRETER_ATTENDEE)},
    }


def test_consecutive_results_of_one_speaker_make_one_turn(transcript: Transcript):
    third = transcript.segments[2]
    assert third == Segment(
        sequence=3,
        start_ms=T0 + 11000,
        end_ms=T0 + 15800,
        speaker_user_id=PROVIDER_USER,
        speaker_role="provider",
        attendee_id=PROVIDER_ATTENDEE,
        text="Can you describe the pain? Is it sharp, or more like a pressure?",
        confidence=pytest.approx((0.98 + 0.9525) / 2, abs=1e-9),  # mean of the two results' means
        result_ids=(R3, R4),
    )
    merged = [s.result_ids for s in transcript.segments if len(s.result_ids) > 1]
    assert merged == [(R3, R4), (R19, R20), (R22, R23)]


def test_segments_in_time_order(transcript: Transcript):
    starts = [s.start_ms for s in transcript.segments]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert all(s.start_ms <= s.end_ms for s in transcript.segments)
    assert all(a.end_ms <= b.start_ms for a, b in itertools.pairwise(transcript.segments))


def test_pipeline_attendee_never_speaks(transcript: Transcript):
    assert all(R7 not in s.result_ids for s in transcript.segments)
    assert "Hmm" not in transcript.text
    # Even when the map knows the pipeline's attendee.
    again = assemble(
        parse_transcription_file(FIXTURE.read_bytes()).results,
        {**SPEAKERS, PIPELINE_ATTENDEE: Speaker("00000000-0000-4000-8000-000000000000", "provider")},
    )
    assert again == assemble(parse_transcription_file(FIXTURE.read_bytes()).results, SPEAKERS)


def test_idempotent_and_order_independent(raw: str, report: ParseReport, transcript: Transcript):
    assert parse_transcription_messages(raw.splitlines()) == report
    assert assemble(report.results, SPEAKERS) == transcript
    assert assemble(list(reversed(report.results)), SPEAKERS) == transcript


def test_max_gap_splits_turns(report: ParseReport):
    assert len(assemble(report.results, SPEAKERS, max_gap_ms=0).segments) == 23
    split = assemble(report.results, SPEAKERS, max_gap_ms=1000)  # R19 -> R20 is 2.5 s; the others 0.4 s
    assert len(split.segments) == 24
    assert [s.result_ids for s in split.segments if len(s.result_ids) > 1] == [(R3, R4), (R22, R23)]
    assert [s.result_ids for s in split.segments[16:18]] == [(R19,), (R20,)]
    assert [s.sequence for s in split.segments] == list(range(1, 25))
    assert len(assemble(report.results, SPEAKERS, max_gap_ms=300).segments) == 26
    assert len(assemble(report.results, SPEAKERS, max_gap_ms=400).segments) == 24  # longer than, not equal
    with pytest.raises(ValueError):
        assemble(report.results, SPEAKERS, max_gap_ms=-1)


def test_unknown_attendee_is_a_participant(report: ParseReport):
    transcript = assemble(report.results, {k: v for k, v in SPEAKERS.items() if k != PATIENT_ATTENDEE})
    patient_turns = [s for s in transcript.segments if s.attendee_id == PATIENT_ATTENDEE]
    assert len(patient_turns) == 8
    assert {(s.speaker_role, s.speaker_user_id) for s in patient_turns} == {("participant", None)}
    assert transcript.people_heard == 3  # told apart by attendee id
    assert transcript.text.splitlines()[1] == "participant: I've had chest pain for two days."


def test_speaker_found_by_external_user_id(report: ParseReport):
    speakers = {k: v for k, v in SPEAKERS.items() if k != PATIENT_ATTENDEE}
    speakers["ext:" + PATIENT_EXTERNAL] = Speaker(PATIENT_USER, "patient")
    assert assemble(report.results, speakers) == assemble(report.results, SPEAKERS)


def test_two_people_heard_is_full_coverage(report: ParseReport):
    two = [r for r in report.results if r.attendee_id != INTERPRETER_ATTENDEE]
    transcript = assemble(two, SPEAKERS)
    assert (transcript.people_heard, transcript.partial_coverage) == (2, False)
    assert assemble([], SPEAKERS) == Transcript([], 0, False, "")


# --- input forms ---------------------------------------------------------------------------------------------


def test_bytes_and_whole_file_inputs(raw: str, report: ParseReport):
    data = FIXTURE.read_bytes()
    assert parse_transcription_file(data) == report
    assert parse_transcription_file(raw) == report
    assert parse_transcription_messages(data.splitlines()) == report
    assert parse_transcription_messages([raw]) == report  # one string holding the whole file
    assert parse_transcription_messages(raw.replace("\n", "\r\n").encode()) == report


def test_invalid_utf8_line_is_malformed(raw: str, report: ParseReport):
    data = raw.encode() + b'{"transcript": "\xff\xfe"}\n'
    assert parse_transcription_file(data) == dataclasses.replace(report, malformed_lines=2)


def test_file_as_json_array(raw: str, report: ParseReport):
    events = []
    for text in raw.splitlines():
        try:
            events.append(json.loads(text))
        except ValueError:
            continue  # the truncated line
    array = json.dumps(events, indent=2)
    assert parse_transcription_file(array) == dataclasses.replace(report, malformed_lines=0)
    assert parse_transcription_file(array.encode()) == dataclasses.replace(report, malformed_lines=0)
    with_junk = json.dumps([*events, 42, {"hello": "world"}])
    assert parse_transcription_file(with_junk).malformed_lines == 2
    single = parse_transcription_file(json.dumps(events[3], indent=2))  # a file that is one (pretty) event
    assert (single.results, single.malformed_lines) == ([by_id(report)[R1]], 0)


# --- rules, on small inputs ----------------------------------------------------------------------------------


def test_last_final_wins_and_empty_final_is_dropped():
    lines = [
        line(result("r1", 1000, 2000, [word("helo", "a1")], text="helo")),
        line(result("r1", 1000, 2000, [word("hello", "a1")], text="hello")),
        line(result("r1", 1000, 2000, [], text="   ")),  # a final with no text: dropped, not malformed
        line(result("r2", 3000, 4000, [], text="")),
    ]
    report = parse_transcription_messages(lines)
    assert [(r.result_id, r.text) for r in report.results] == [("r1", "hello")]
    assert (report.malformed_lines, report.partial_results, report.status_lines) == (0, 0, 0)


def test_items_joined_without_space_before_punctuation_and_confidence():
    items = [
        word("Chest", "a1", confidence=0.8),
        word("pain", "a1", confidence=None),
        word(",", "a1", confidence=0.1, kind="punctuation"),
        word("two", "a1", confidence=0.6),
        word("days", "a1", confidence=1.0),
        word(".", "a1", confidence=0.0, kind="punctuation"),
    ]
    (r,) = parse_transcription_messages([line(result("r1", 5, 9, items))]).results
    assert r.text == "Chest pain, two days."
    assert r.confidence == pytest.approx(0.8, abs=1e-9)  # (0.8 + 0.6 + 1.0) / 3
    (none,) = parse_transcription_messages([line(result("r2", 5, 9, [word("Hi", "a1", confidence=None)]))]).results
    assert none.confidence is None
    assert assemble([none], {}).segments[0].confidence is None


def test_attendee_tie_goes_to_first_word():
    items = [word("yes", "a2", "u_two"), word("okay", "a1", "u_one"), word("no", "a1"), word("so", "a2")]
    (r,) = parse_transcription_messages([line(result("r1", 0, 1, items, text="yes okay no so"))]).results
    assert (r.attendee_id, r.external_user_id) == ("a2", "u_two")
    items = [word("yes", "a2"), word("okay", "a1"), word("no", "a1")]
    (r,) = parse_transcription_messages([line(result("r1", 0, 1, items, text="yes okay no"))]).results
    assert r.attendee_id == "a1"


def test_status_malformed_and_odd_lines():
    final = result("r1", 10, 20, [word("hello", "a1")], text="hello")
    lines = [
        "",
        "   ",
        json.dumps({"type": "TranscriptionStatus", "transcriptionStatus": {"type": "started", "eventTimeMs": 1}}),
        json.dumps({"Type": "TranscriptionStatus", "EventTimeMs": 2, "TranscriptionRegion": "eu-west-1"}),
        json.dumps({"transcriptionStatus": {"type": "interrupted", "eventTimeMs": 3}}),
        "not json at all",
        json.dumps({"hello": "world"}),
        json.dumps([1, 2]),
        json.dumps({"transcript": {"results": [{"isPartial": False, "alternatives": []}]}}),  # no id, no times
        json.dumps(result("r0", 1, 2, [word("x", "a1")], text="partial", partial=True)),  # a result, not an event
        line(final) + line(result("r2", 30, 40, [word("bye", "a1")], text="bye")),  # two objects on one line
        json.dumps(
            {
                "Transcript": {
                    "Results": [
                        {
                            "ResultId": "r3",
                            "IsPartial": "true",
                            "StartTimeMs": 10,
                            "EndTimeMs": 20,
                            "Alternatives": [{"Transcript": "hel"}],
                        }
                    ]
                }
            }
        ),
        json.dumps({"type": "Transcript", "transcriptEvent": {"results": [{**final, "resultId": "r4"}]}}),
    ]
    report = parse_transcription_messages(lines)
    assert [r.result_id for r in report.results] == ["r1", "r4", "r2"]
    assert report.status_lines == 3
    assert report.malformed_lines == 5
    assert report.partial_results == 1


def test_result_times_as_strings_and_from_items():
    event = {
        "transcript": {
            "results": [
                {"resultId": "r1", "startTimeMs": "1795730400000", "endTimeMs": "1795730401000",
                 "alternatives": [{"transcript": "ok", "items": []}]},
                {"resultId": "r2", "alternatives": [{"items": [
                    {**word("fine", "a1"), "startTimeMs": 1795730402000, "endTimeMs": 1795730402500},
                    {**word("thanks", "a1"), "startTimeMs": 1795730402600, "endTimeMs": 1795730403000},
                ]}]},
            ]
        }
    }  # fmt: skip
    report = parse_transcription_messages([json.dumps(event)])
    assert [(r.result_id, r.start_ms, r.end_ms, r.text) for r in report.results] == [
        ("r1", T0, T0 + 1000, "ok"),
        ("r2", T0 + 2000, T0 + 3000, "fine thanks"),
    ]
    assert report.results[0].attendee_id is None and report.malformed_lines == 0


def test_same_user_on_two_attendees_is_one_speaker():
    results = [
        Result("r1", 0, 10, "old", "u_p", "I had to", 0.9),
        Result("r2", 12, 20, "new", "u_p", "rejoin.", None),
        Result("r3", 30, 40, "a9", "u_q", "Welcome back.", 0.5),
    ]
    speakers = {"old": Speaker("p", "patient"), "new": Speaker("p", "patient"), "a9": Speaker("d", "provider")}
    transcript = assemble(results, speakers)
    assert [(s.result_ids, s.text, s.attendee_id, s.confidence) for s in transcript.segments] == [
        (("r1", "r2"), "I had to rejoin.", "old", 0.9),
        (("r3",), "Welcome back.", "a9", 0.5),
    ]
    assert transcript.people_heard == 2
    unmapped = assemble(results, {})  # no user ids: the two attendees are two people
    assert [s.result_ids for s in unmapped.segments] == [("r1",), ("r2",), ("r3",)]
    assert unmapped.people_heard == 3 and unmapped.partial_coverage is True
