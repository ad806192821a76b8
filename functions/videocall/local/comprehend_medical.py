"""A local stand-in for Amazon Comprehend Medical (DetectEntitiesV2, InferICD10CM), for `videocall serve`
and tests. NOT MEDICAL ADVICE and not a medical model: it answers from a small, fixed keyword table
(below), and every response says so in its ModelVersion, "local-stand-in-not-medical-advice".

Like the Chime emulators it has the boto3 client's method names and keyword arguments, checks every
request against the comprehendmedical input shapes in the installed botocore's service model
(ParamValidator, then what the service checks itself), answers with the model's output shapes and
raises botocore `ClientError`s with the model's error codes:

- Text longer than the model's maximum (20,000 characters for DetectEntitiesV2, 10,000 for
  InferICD10CM) -> TextSizeLimitExceededException; text that is not valid UTF-8 (a lone surrogate)
  -> InvalidEncodingException; any other invalid request -> InvalidRequestException.
- `fail_next[operation]`: error codes to raise on that operation's next calls (e.g. throttling).

The keyword table (matched case-insensitively on word boundaries; offsets are exact `str` indices):

    chest pain            MEDICAL_CONDITION / DX_NAME (SYMPTOM)    R07.9 Chest pain, unspecified
    shortness of breath   MEDICAL_CONDITION / DX_NAME (SYMPTOM)    R06.02 Shortness of breath
    hypertension          MEDICAL_CONDITION / DX_NAME (DIAGNOSIS)  I10 Essential (primary) hypertension
    lisinopril            MEDICATION / GENERIC_NAME, with a DOSAGE attribute for a dose right after it ("10 mg")
    penicillin            MEDICATION / GENERIC_NAME; after "allergic"/"allergy"/"allergies" (within 3 words)
                          BEHAVIORAL_ENVIRONMENTAL_SOCIAL / ALLERGIES
    ECG, EKG, troponin    TEST_TREATMENT_PROCEDURE / TEST_NAME

An entity preceded within 3 words of the same clause by "no", "denies" or "denied" has the NEGATION
trait. Multi-word terms match across any whitespace, line breaks included (as the service can).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from botocore.model import ServiceModel, StructureShape

from videocall.local.chime_emulator import _client_error as _service_error
from videocall.local.chime_emulator import model_problem, take_failure

SERVICE = "comprehendmedical"
MODEL_VERSION = "local-stand-in-not-medical-advice"
_STATUS = {
    "InvalidRequestException": 400,
    "InvalidEncodingException": 400,
    "TextSizeLimitExceededException": 400,
    "TooManyRequestsException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}


@cache
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model(SERVICE)


def text_limit(operation: str) -> int:
    """The model's maximum length of the operation's Text."""
    input_shape = service_model().operation_model(operation).input_shape
    assert isinstance(input_shape, StructureShape)
    return int(input_shape.members["Text"].metadata["max"])


def _client_error(operation: str, code: str, message: str, headers: dict[str, str] | None = None) -> ClientError:
    return _service_error(operation, code, message, headers, statuses=_STATUS)


@dataclass(frozen=True)
class _Term:
    pattern: str
    category: str
    type: str
    score: float
    traits: tuple[str, ...] = ()
    icd10: tuple[tuple[str, str, float], ...] = ()  # (Code, Description, Score), best first
    dosage: bool = False  # a dose right after it is its DOSAGE attribute
    allergen: bool = False  # after "allergic to" it is an allergy


_TERMS = (
    _Term(r"shortness\s+of\s+breath", "MEDICAL_CONDITION", "DX_NAME", 0.97, ("SYMPTOM",),
          (("R06.02", "Shortness of breath", 0.86), ("R06.00", "Dyspnea, unspecified", 0.52))),
    _Term(r"chest\s+pain", "MEDICAL_CONDITION", "DX_NAME", 0.98, ("SYMPTOM",),
          (("R07.9", "Chest pain, unspecified", 0.84), ("R07.89", "Other chest pain", 0.47))),
    _Term(r"hypertension", "MEDICAL_CONDITION", "DX_NAME", 0.96, ("DIAGNOSIS",),
          (("I10", "Essential (primary) hypertension", 0.91),)),
    _Term(r"lisinopril", "MEDICATION", "GENERIC_NAME", 0.99, dosage=True),
    _Term(r"penicillin", "MEDICATION", "GENERIC_NAME", 0.97, allergen=True),
    _Term(r"ecg|ekg", "TEST_TREATMENT_PROCEDURE", "TEST_NAME", 0.95),
    _Term(r"troponin", "TEST_TREATMENT_PROCEDURE", "TEST_NAME", 0.94),
)  # fmt: skip
_MATCHER = re.compile(
    r"\b(?:" + "|".join(f"(?P<t{i}>{term.pattern})" for i, term in enumerate(_TERMS)) + r")\b", re.IGNORECASE
)
_DOSAGE = re.compile(r"[ \t,:]+(\d+(?:\.\d+)?\s?(?:mg|mcg|ml|g))\b", re.IGNORECASE)
_CLAUSE_END = re.compile(r"[.;!?\n]")
_WORD = re.compile(r"[a-z']+")
_NEGATORS = frozenset({"no", "denies", "denied"})
_ALLERGY = frozenset({"allergic", "allergy", "allergies"})


def _words_before(text: str, start: int, count: int = 3) -> list[str]:
    clause = _CLAUSE_END.split(text[:start])[-1]
    return _WORD.findall(clause.lower())[-count:]


@dataclass(frozen=True)
class _Match:
    term: _Term
    begin: int
    end: int
    negated: bool
    allergy: bool


def _matches(text: str) -> list[_Match]:
    found: list[_Match] = []
    for match in _MATCHER.finditer(text):
        assert match.lastgroup is not None
        term = _TERMS[int(match.lastgroup[1:])]
        before = _words_before(text, match.start())
        allergy = term.allergen and any(word in _ALLERGY for word in before)
        found.append(_Match(term, match.start(), match.end(), any(w in _NEGATORS for w in before), allergy))
    return found


class LocalComprehendMedical:
    """Stand-in for boto3's "comprehendmedical" client: keyword table, not a medical model (see above)."""

    def __init__(self) -> None:
        # Test hook: operation name -> error codes to raise on its next calls (e.g. throttling).
        self.fail_next: dict[str, list[str]] = {}
        self.requests: list[tuple[str, int]] = []  # (operation, characters) of each request answered

    # --- boto3-shaped API ---------------------------------------------------------------------
    def detect_entities_v2(self, **params: Any) -> dict[str, Any]:
        text = self._check("DetectEntitiesV2", params)
        entities: list[dict[str, Any]] = []
        next_id = 0
        for match in _matches(text):
            category, kind = match.term.category, match.term.type
            if match.allergy:
                category, kind = "BEHAVIORAL_ENVIRONMENTAL_SOCIAL", "ALLERGIES"
            traits = [*match.term.traits, *(["NEGATION"] if match.negated else [])]
            entity: dict[str, Any] = {
                "Id": next_id,
                "BeginOffset": match.begin,
                "EndOffset": match.end,
                "Score": match.term.score,
                "Text": text[match.begin : match.end],
                "Category": category,
                "Type": kind,
                "Traits": [{"Name": name, "Score": 0.9} for name in traits],
                "Attributes": [],
            }
            next_id += 1
            dose = _DOSAGE.match(text, match.end) if match.term.dosage else None
            if dose is not None:
                entity["Attributes"].append(
                    {
                        "Type": "DOSAGE",
                        "Score": 0.95,
                        "RelationshipScore": 0.99,
                        "RelationshipType": "DOSAGE",
                        "Id": next_id,
                        "BeginOffset": dose.start(1),
                        "EndOffset": dose.end(1),
                        "Text": dose.group(1),
                        "Category": category,
                        "Traits": [],
                    }
                )
                next_id += 1
            entities.append(entity)
        return {"Entities": entities, "UnmappedAttributes": [], "ModelVersion": MODEL_VERSION}

    def infer_icd10_cm(self, **params: Any) -> dict[str, Any]:
        text = self._check("InferICD10CM", params)
        entities: list[dict[str, Any]] = []
        for match in _matches(text):
            if not match.term.icd10:
                continue
            traits = [*match.term.traits, *(["NEGATION"] if match.negated else [])]
            entities.append(
                {
                    "Id": len(entities),
                    "Text": text[match.begin : match.end],
                    "Category": "MEDICAL_CONDITION",
                    "Type": "DX_NAME",
                    "Score": match.term.score,
                    "BeginOffset": match.begin,
                    "EndOffset": match.end,
                    "Attributes": [],
                    "Traits": [{"Name": name, "Score": 0.9} for name in traits],
                    "ICD10CMConcepts": [
                        {"Description": description, "Code": code, "Score": score}
                        for code, description, score in match.term.icd10
                    ],
                }
            )
        return {"Entities": entities, "ModelVersion": MODEL_VERSION}

    # --- internals ----------------------------------------------------------------------------
    def _check(self, operation: str, params: dict[str, Any]) -> str:
        """The request's Text, once the request is one the service would accept."""
        code = take_failure(self.fail_next, operation)
        if code:
            raise _client_error(operation, code, f"emulated {code}", {"retry-after": "2"})
        text = params.get("Text")
        if isinstance(text, str):  # the service's own answers for these come before a generic refusal
            if len(text) > text_limit(operation):
                raise _client_error(
                    operation, "TextSizeLimitExceededException",
                    f"Text is longer than {text_limit(operation)} characters",
                )  # fmt: skip
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise _client_error(operation, "InvalidEncodingException", "Text is not valid UTF-8") from None
        problem = model_problem(service_model().operation_model(operation).input_shape, params)
        if problem:
            raise _client_error(operation, "InvalidRequestException", problem)
        assert isinstance(text, str)
        self.requests.append((operation, len(text)))
        return text
