"""Medical extraction: chunking at the service's limits, offsets mapped back to segments, the Comprehend
Medical gateway against botocore's Stubber (the real comprehendmedical model checks every request we send
and every response we read), and the local stand-in."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from videocall.core.errors import ServiceUnavailable
from videocall.local.chime_emulator import _server_side_problem
from videocall.local.comprehend_medical import MODEL_VERSION, LocalComprehendMedical, text_limit
from videocall.transcripts.medical import (
    DETECT_ENTITIES_MAX_CHARS,
    INFER_ICD10CM_MAX_CHARS,
    Chunk,
    ComprehendMedicalGateway,
    Entity,
    Extraction,
    Icd10Candidate,
    MedicalExtractionUnavailable,
    SegmentText,
    chunk_segments,
)

DETECT, INFER = DETECT_ENTITIES_MAX_CHARS, INFER_ICD10CM_MAX_CHARS
SECRET = "Zebediah"  # a patient's name in the transcript: never in a log line or an error


def filler(length: int, seed: int = 0) -> str:
    """`length` characters of lower-case words separated by single spaces, no entity, no edge whitespace."""
    rng = random.Random(seed)
    words: list[str] = []
    size = -1
    while size < length:
        word = "".join(rng.choice("bdfhjklmqrvwxz") for _ in range(rng.randint(2, 9)))
        words.append(word)
        size += len(word) + 1
    text = " ".join(words)[:length]
    return text[:-1] + "x" if text.endswith(" ") else text


def pieces_of(chunks: list[Chunk]) -> list[tuple[int, str]]:
    return [(sequence, chunk.text[start:end]) for chunk in chunks for sequence, start, end in chunk.spans]


def client() -> Any:
    return boto3.client("comprehendmedical", region_name="eu-west-1")


@pytest.fixture
def stubbed() -> Iterator[tuple[ComprehendMedicalGateway, Stubber, list[float]]]:
    real = client()
    sleeps: list[float] = []
    with Stubber(real) as stubber:
        yield ComprehendMedicalGateway(real, sleep=sleeps.append), stubber, sleeps
        stubber.assert_no_pending_responses()


# --- the facts, against the installed botocore model ------------------------------------------------
def test_limits_errors_and_regions_are_the_models():
    model = botocore.session.get_session().get_service_model("comprehendmedical")
    assert text_limit("DetectEntitiesV2") == DETECT == 20_000
    assert text_limit("InferICD10CM") == INFER == 10_000
    for operation in ("DetectEntitiesV2", "InferICD10CM"):
        errors = {shape.name for shape in model.operation_model(operation).error_shapes}
        assert {"TextSizeLimitExceededException", "TooManyRequestsException"} <= errors
        assert "ThrottlingException" not in errors  # not in the model; retried anyway
    regions = botocore.session.get_session().get_available_regions("comprehendmedical")
    assert {"eu-west-1", "eu-west-2"} <= set(regions) and "eu-central-1" not in regions


# --- chunking --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", [DETECT, INFER])
def test_segments_filling_exactly_the_limit_are_one_chunk_and_one_more_character_makes_two(limit: int):
    first = SegmentText(1, filler(limit // 2, 1))
    exact = [first, SegmentText(2, filler(limit - len(first.text) - 1, 2))]  # + the "\n" between them
    [chunk] = chunk_segments(exact, limit)
    assert len(chunk.text) == limit and chunk.text == f"{exact[0].text}\n{exact[1].text}"
    assert chunk.spans == ((1, 0, len(first.text)), (2, len(first.text) + 1, limit))

    over = [first, SegmentText(2, filler(limit - len(first.text), 2))]
    chunks = chunk_segments(over, limit)
    assert [c.text for c in chunks] == [first.text, over[1].text]  # whole segments, never cut
    assert [c.spans for c in chunks] == [((1, 0, len(first.text)),), ((2, 0, len(over[1].text)),)]


def test_packing_is_greedy_in_order_within_the_limit_and_never_cuts_a_segment():
    rng = random.Random(7)
    for limit in (50, 200, 1_000):
        segments = [SegmentText(i, filler(rng.randint(1, limit), i)) for i in range(300)]
        chunks = chunk_segments(segments, limit)
        assert pieces_of(chunks) == [(s.sequence, s.text) for s in segments]  # whole, in order
        assert all(len(c.text) <= limit for c in chunks)
        for chunk in chunks:
            assert chunk.text == "\n".join(chunk.text[start:end] for _, start, end in chunk.spans)
        for before, after in itertools.pairwise(chunks):  # fewest: the next segment did not fit
            first_after = after.spans[0]
            assert len(before.text) + 1 + (first_after[2] - first_after[1]) > limit


def test_empty_and_whitespace_segments_are_skipped_and_the_limit_must_be_positive():
    chunks = chunk_segments([SegmentText(1, ""), SegmentText(2, " \n\t"), SegmentText(3, "ok")], 10)
    assert chunks == [Chunk("ok", ((3, 0, 2),))]
    assert chunk_segments([], 10) == []
    with pytest.raises(ValueError):
        chunk_segments([SegmentText(1, "a")], 0)


def test_a_segment_longer_than_the_limit_is_split_after_the_last_whitespace_and_keeps_its_sequence():
    text = filler(DETECT - 3, 1) + " " + filler(6_000, 2)  # the last whitespace within the limit is at 19,997
    chunks = chunk_segments([SegmentText(5, "short one"), SegmentText(6, text), SegmentText(7, "next")], DETECT)
    assert [c.spans[0][0] for c in chunks] == [5, 6, 6]
    assert chunks[0].text == "short one"  # the long segment does not fit after it: a chunk of its own
    assert chunks[1].text == text[: DETECT - 2] and chunks[1].text.endswith(" ")  # cut after the whitespace
    assert chunks[2].text == text[DETECT - 2 :] + "\nnext"  # the last piece packs with the next segment
    assert chunks[2].spans == ((6, 0, len(text) - DETECT + 2), (7, len(text) - DETECT + 3, len(chunks[2].text)))
    assert "".join(piece for sequence, piece in pieces_of(chunks) if sequence == 6) == text  # contiguous

    no_space = "x" * 25
    assert [c.text for c in chunk_segments([SegmentText(1, no_space)], 10)] == ["x" * 10, "x" * 10, "x" * 5]


# --- the gateway against the stand-in: limits and offsets across chunks ------------------------------
def test_chunks_exactly_at_both_limits_are_accepted_and_billed_as_few_calls_as_possible():
    stand_in = LocalComprehendMedical()
    first = SegmentText(1, filler(INFER, 1))
    segments = [first, SegmentText(2, filler(DETECT - INFER - 1, 2))]
    extraction = ComprehendMedicalGateway(stand_in).extract(segments)
    assert stand_in.requests == [("DetectEntitiesV2", DETECT), ("InferICD10CM", INFER), ("InferICD10CM", INFER - 1)]
    assert extraction.calls == 3 and extraction.characters == DETECT + INFER + INFER - 1

    stand_in.requests.clear()
    ComprehendMedicalGateway(stand_in).extract([*segments, SegmentText(3, "x")], icd10=False)
    assert stand_in.requests == [("DetectEntitiesV2", DETECT), ("DetectEntitiesV2", 1)]


def test_offsets_map_back_to_the_right_segment_across_chunks():
    """Entities in several chunks of each operation, and in the second piece of an over-long segment."""
    long_text = filler(DETECT + 500, 3) + " patient DENIES chest pain today"
    segments = [
        SegmentText(10, "Any chest pain or shortness of breath?"),
        SegmentText(11, filler(12_000, 4)),
        SegmentText(12, "I take lisinopril 10 mg for my hypertension."),
        SegmentText(13, filler(15_000, 5)),
        SegmentText(14, "Allergic to Penicillin. We will order an ECG and a troponin."),
        SegmentText(15, long_text),
    ]
    stand_in = LocalComprehendMedical()
    extraction = ComprehendMedicalGateway(stand_in).extract(segments)
    assert len([r for r in stand_in.requests if r[0] == "DetectEntitiesV2"]) >= 3

    by_sequence = {s.sequence: s.text for s in segments}
    for found in [*extraction.entities, *extraction.icd10]:
        assert by_sequence[found.segment_sequence][found.begin : found.end] == found.text
    got = {(e.segment_sequence, e.text, e.category, e.type, e.traits) for e in extraction.entities}
    assert got == {
        (10, "chest pain", "MEDICAL_CONDITION", "DX_NAME", ("SYMPTOM",)),
        (10, "shortness of breath", "MEDICAL_CONDITION", "DX_NAME", ("SYMPTOM",)),
        (12, "lisinopril", "MEDICATION", "GENERIC_NAME", ()),
        (12, "10 mg", "MEDICATION", "DOSAGE", ()),
        (12, "hypertension", "MEDICAL_CONDITION", "DX_NAME", ("DIAGNOSIS",)),
        (14, "Penicillin", "BEHAVIORAL_ENVIRONMENTAL_SOCIAL", "ALLERGIES", ()),
        (14, "ECG", "TEST_TREATMENT_PROCEDURE", "TEST_NAME", ()),
        (14, "troponin", "TEST_TREATMENT_PROCEDURE", "TEST_NAME", ()),
        (15, "chest pain", "MEDICAL_CONDITION", "DX_NAME", ("SYMPTOM", "NEGATION")),
    }
    negated = next(e for e in extraction.entities if e.segment_sequence == 15)
    assert (negated.begin, negated.end) == (len(long_text) - 16, len(long_text) - 6)  # within the segment
    assert [(c.segment_sequence, c.code, c.text, c.begin) for c in extraction.icd10] == [
        (10, "R07.9", "chest pain", 4),
        (10, "R06.02", "shortness of breath", 18),
        (12, "I10", "hypertension", 31),
    ]  # the denied chest pain of segment 15 gives no code
    assert extraction.entities == sorted(
        extraction.entities, key=lambda e: (e.segment_sequence, e.begin)
    )  # transcript order


def test_an_entity_running_across_two_segments_is_dropped_not_guessed():
    segments = [SegmentText(1, "my chest"), SegmentText(2, "pain is gone")]
    extraction = ComprehendMedicalGateway(LocalComprehendMedical()).extract(segments)
    assert extraction == Extraction(entities=[], icd10=[], calls=2, characters=2 * len("my chest\npain is gone"))


def test_nothing_to_send_is_no_call_and_sequences_must_be_unique(stubbed):
    gateway, _, _ = stubbed
    assert gateway.extract([SegmentText(1, "  "), SegmentText(2, "")]) == Extraction([], [], 0, 0)
    with pytest.raises(ValueError):
        gateway.extract([SegmentText(1, "a"), SegmentText(1, "b")])


# --- the gateway against botocore's Stubber ---------------------------------------------------------
def test_real_response_shapes_are_read_and_mapped_to_segments(stubbed, captured):
    gateway, stubber, _ = stubbed
    segments = [SegmentText(1, f"Hello {SECRET}."), SegmentText(2, "Started lisinopril 10 mg, no chest pain.")]
    text = f"Hello {SECRET}.\nStarted lisinopril 10 mg, no chest pain."
    med = text.index("lisinopril")
    dose = text.index("10 mg")
    pain = text.index("chest pain")
    stubber.add_response(
        "detect_entities_v2",
        {
            "Entities": [
                {"Id": 0, "BeginOffset": med, "EndOffset": med + 10, "Score": 0.998, "Text": "lisinopril",
                 "Category": "MEDICATION", "Type": "GENERIC_NAME", "Traits": [],
                 "Attributes": [{"Type": "DOSAGE", "Score": 0.99, "RelationshipScore": 0.99,
                                 "RelationshipType": "DOSAGE", "Id": 1, "BeginOffset": dose, "EndOffset": dose + 5,
                                 "Text": "10 mg", "Category": "MEDICATION", "Traits": []}]},
                {"Id": 2, "BeginOffset": pain, "EndOffset": pain + 10, "Score": 0.97, "Text": "chest pain",
                 "Category": "MEDICAL_CONDITION", "Type": "DX_NAME",
                 "Traits": [{"Name": "SYMPTOM", "Score": 0.8}, {"Name": "NEGATION", "Score": 0.95}]},
                {"Id": 3, "BeginOffset": 6, "EndOffset": 14, "Score": 0.9, "Text": "someone else",
                 "Category": "PROTECTED_HEALTH_INFORMATION", "Type": "NAME"},  # Text not at its offsets: dropped
            ],
            "UnmappedAttributes": [
                {"Type": "MEDICAL_CONDITION",
                 "Attribute": {"Type": "SYSTEM_ORGAN_SITE", "Score": 0.7, "Id": 4, "BeginOffset": pain,
                               "EndOffset": pain + 5, "Text": "chest", "Traits": []}},
            ],
            "ModelVersion": "2.5.0",
        },
        {"Text": text},
    )  # fmt: skip
    stubber.add_response(
        "infer_icd10_cm",
        {
            "Entities": [
                {"Id": 0, "Text": "chest pain", "Category": "MEDICAL_CONDITION", "Type": "DX_NAME", "Score": 0.96,
                 "BeginOffset": pain, "EndOffset": pain + 10, "Attributes": [],
                 "Traits": [{"Name": "NEGATION", "Score": 0.94}],
                 "ICD10CMConcepts": [{"Description": "Chest pain, unspecified", "Code": "R07.9", "Score": 0.8}]},
            ],
            "ModelVersion": "0.1.0",
        },
        {"Text": text},
    )  # fmt: skip

    extraction = gateway.extract(segments)

    assert extraction.entities == [
        Entity(2, "MEDICATION", "GENERIC_NAME", "lisinopril", 0.998, (), 8, 18),
        Entity(2, "MEDICATION", "DOSAGE", "10 mg", 0.99, (), 19, 24),
        Entity(2, "MEDICAL_CONDITION", "SYSTEM_ORGAN_SITE", "chest", 0.7, (), 29, 34),
        Entity(2, "MEDICAL_CONDITION", "DX_NAME", "chest pain", 0.97, ("SYMPTOM", "NEGATION"), 29, 39),
    ]
    assert extraction.icd10 == []  # negated: no code
    assert extraction.calls == 2 and extraction.characters == 2 * len(text)
    log = captured.getvalue()
    assert SECRET not in log and "lisinopril" not in log and "chest" not in log
    record = next(json.loads(line) for line in log.splitlines() if '"medical extraction"' in line)
    assert (record["calls"], record["entities"], record["icd10_candidates"], record["dropped"]) == (2, 4, 0, 1)


def test_icd10_keeps_the_top_scoring_concept_of_each_entity_in_chunks_of_at_most_10000(stubbed):
    gateway, stubber, _ = stubbed
    segments = [SegmentText(1, filler(INFER - 20, 1) + " hypertension"), SegmentText(2, "chest pain, shortness")]
    assert len(segments[0].text) == INFER - 7
    stubber.add_response("detect_entities_v2", {"Entities": [], "ModelVersion": "2.5.0"},
                         {"Text": f"{segments[0].text}\n{segments[1].text}"})  # fmt: skip
    at = segments[0].text.index("hypertension")
    concepts = [{"Description": "Secondary hypertension, unspecified", "Code": "I15.9", "Score": 0.31},
                {"Description": "Essential (primary) hypertension", "Code": "I10", "Score": 0.88},
                {"Description": "Hypertensive heart disease", "Code": "I11.9", "Score": 0.12}]  # fmt: skip
    stubber.add_response(
        "infer_icd10_cm",
        {"Entities": [{"Id": 0, "Text": "hypertension", "Category": "MEDICAL_CONDITION", "Type": "DX_NAME",
                       "Score": 0.99, "BeginOffset": at, "EndOffset": at + 12,
                       "Traits": [{"Name": "DIAGNOSIS", "Score": 0.9}], "ICD10CMConcepts": concepts}],
         "ModelVersion": "0.1.0"},
        {"Text": segments[0].text},
    )  # fmt: skip
    stubber.add_response(
        "infer_icd10_cm",
        {"Entities": [{"Id": 0, "Text": "chest pain", "Category": "MEDICAL_CONDITION", "Type": "DX_NAME",
                       "Score": 0.9, "BeginOffset": 0, "EndOffset": 10,
                       "ICD10CMConcepts": [{"Description": "Chest pain, unspecified", "Code": "R07.9", "Score": 0.7},
                                           {"Description": "Other chest pain", "Code": "R07.89", "Score": 0.2}]},
                      {"Id": 1, "Text": "shortness", "Category": "MEDICAL_CONDITION", "Type": "DX_NAME",
                       "Score": 0.4, "BeginOffset": 12, "EndOffset": 21, "ICD10CMConcepts": []}]},  # no ModelVersion
        {"Text": segments[1].text},
    )  # fmt: skip

    assert gateway.extract(segments).icd10 == [
        Icd10Candidate(1, "I10", "Essential (primary) hypertension", 0.88, "hypertension", at, at + 12),
        Icd10Candidate(2, "R07.9", "Chest pain, unspecified", 0.7, "chest pain", 0, 10),
    ]


def test_without_icd10_only_entities_are_detected(stubbed):
    gateway, stubber, _ = stubbed
    stubber.add_response("detect_entities_v2", {"Entities": [], "ModelVersion": "2.5.0"}, {"Text": "a\nb"})
    assert gateway.extract([SegmentText(1, "a"), SegmentText(2, "b")], icd10=False) == Extraction([], [], 1, 3)


def test_throttling_is_retried_with_backoff_then_gives_up_as_503(stubbed):
    gateway, stubber, sleeps = stubbed
    stubber.add_client_error("detect_entities_v2", "TooManyRequestsException", "slow down", 429)
    stubber.add_client_error("detect_entities_v2", "ThrottlingException", "slow down", 400)
    stubber.add_response("detect_entities_v2", {"Entities": [], "ModelVersion": "2.5.0"}, {"Text": "fine"})
    assert gateway.extract([SegmentText(1, "fine")], icd10=False).calls == 1
    assert len(sleeps) == 2 and gateway.caller.calls == 3

    stubber.add_response("detect_entities_v2", {"Entities": [], "ModelVersion": "2.5.0"}, {"Text": "fine"})
    for _ in range(5):
        stubber.add_client_error("infer_icd10_cm", "TooManyRequestsException", "slow down", 429,
                                 response_meta={"HTTPHeaders": {"retry-after": "3"}})  # fmt: skip
    with pytest.raises(MedicalExtractionUnavailable) as raised:
        gateway.extract([SegmentText(1, "fine")])
    assert len(sleeps) == 2 + 4 and raised.value.retry_after == 3
    assert isinstance(raised.value, ServiceUnavailable) and raised.value.status == 503
    assert raised.value.code == "medical_extraction_unavailable"


@pytest.mark.parametrize(
    ("code", "status"),
    [("InvalidRequestException", 400), ("InvalidEncodingException", 400), ("TextSizeLimitExceededException", 400),
     ("InternalServerException", 500), ("ServiceUnavailableException", 503), ("AccessDeniedException", 403)],
)  # fmt: skip
def test_other_errors_become_unavailable_without_the_aws_message(stubbed, captured, code: str, status: int):
    gateway, stubber, sleeps = stubbed
    stubber.add_client_error("detect_entities_v2", code, f"bad text 'I am {SECRET}' secret-detail", status)
    with pytest.raises(MedicalExtractionUnavailable) as raised:
        gateway.extract([SegmentText(1, f"I am {SECRET}")])
    assert sleeps == [] and gateway.caller.calls == 1  # not retried
    assert "secret-detail" not in raised.value.message and SECRET not in raised.value.message
    assert raised.value.message == MedicalExtractionUnavailable.message and raised.value.retry_after == 5
    log = captured.getvalue()
    assert code in log and "secret-detail" not in log and SECRET not in log


# --- the stand-in -------------------------------------------------------------------------------------
SAMPLES = [
    "Patient denies chest pain. Reports SHORTNESS OF BREATH on exertion.",
    "History of hypertension, takes Lisinopril 10 mg daily. Allergic to penicillin.",
    "No ECG yet; troponin pending. Penicillin 500 mg was given.",
    "nothing medical here",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_the_stand_ins_answers_are_valid_for_the_models_output_shapes(text: str):
    stand_in = LocalComprehendMedical()
    model = botocore.session.get_session().get_service_model("comprehendmedical")
    real = client()
    with Stubber(real) as stubber:  # add_response validates each answer against the operation's output shape
        for method, operation in (("detect_entities_v2", "DetectEntitiesV2"), ("infer_icd10_cm", "InferICD10CM")):
            answer = getattr(stand_in, method)(Text=text)
            assert answer["ModelVersion"] == MODEL_VERSION == "local-stand-in-not-medical-advice"
            assert _server_side_problem(model.operation_model(operation).output_shape, answer, "") is None  # enums
            for entity in answer["Entities"]:
                assert text[entity["BeginOffset"] : entity["EndOffset"]] == entity["Text"]
                for attribute in entity["Attributes"]:
                    assert text[attribute["BeginOffset"] : attribute["EndOffset"]] == attribute["Text"]
            stubber.add_response(method, answer, {"Text": text})
        ComprehendMedicalGateway(real).extract([SegmentText(1, text)])
        stubber.assert_no_pending_responses()


def test_the_stand_in_marks_negation_and_matches_case_insensitively():
    stand_in = LocalComprehendMedical()
    text = "She DENIES Chest Pain. Chest pain since Monday? No, she had no fever and no real shortness of breath."
    found = [(e["Text"], e["BeginOffset"], [t["Name"] for t in e["Traits"]])
             for e in stand_in.detect_entities_v2(Text=text)["Entities"]]  # fmt: skip
    assert found == [
        ("Chest Pain", 11, ["SYMPTOM", "NEGATION"]),
        ("Chest pain", 23, ["SYMPTOM"]),  # "denies" is in the sentence before
        ("shortness of breath", 81, ["SYMPTOM", "NEGATION"]),  # "no" 2 words before
    ]
    assert "NEGATION" not in str(stand_in.detect_entities_v2(Text="no one asked: four words before chest pain"))
    icd = stand_in.infer_icd10_cm(Text="denies chest pain")["Entities"]
    assert [(e["ICD10CMConcepts"][0]["Code"], [t["Name"] for t in e["Traits"]]) for e in icd] == [
        ("R07.9", ["SYMPTOM", "NEGATION"])
    ]


@pytest.mark.parametrize(("method", "limit"), [("detect_entities_v2", DETECT), ("infer_icd10_cm", INFER)])
def test_the_stand_in_enforces_the_models_text_limits(method: str, limit: int):
    stand_in = LocalComprehendMedical()
    assert "Entities" in getattr(stand_in, method)(Text="a" * limit)
    with pytest.raises(ClientError) as raised:
        getattr(stand_in, method)(Text="a" * (limit + 1))
    assert raised.value.response["Error"]["Code"] == "TextSizeLimitExceededException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("params", "code"),
    [({"Text": ""}, "InvalidRequestException"), ({}, "InvalidRequestException"),
     ({"Text": 42}, "InvalidRequestException"), ({"Text": "ok", "LanguageCode": "en"}, "InvalidRequestException"),
     ({"Text": "bad \ud800 surrogate"}, "InvalidEncodingException")],
)  # fmt: skip
def test_the_stand_in_refuses_invalid_requests_with_a_client_error(params: dict[str, Any], code: str):
    stand_in = LocalComprehendMedical()
    for method in ("detect_entities_v2", "infer_icd10_cm"):
        with pytest.raises(ClientError) as raised:
            getattr(stand_in, method)(**params)
        assert raised.value.response["Error"]["Code"] == code
    assert stand_in.requests == []


def test_the_stand_ins_throttling_is_retried_by_the_gateway():
    stand_in = LocalComprehendMedical()
    stand_in.fail_next["DetectEntitiesV2"] = ["TooManyRequestsException", "TooManyRequestsException"]
    sleeps: list[float] = []
    gateway = ComprehendMedicalGateway(stand_in, sleep=sleeps.append)
    extraction = gateway.extract([SegmentText(1, "troponin and ECG")], icd10=False)
    assert [e.text for e in extraction.entities] == ["troponin", "ECG"] and len(sleeps) == 2
