"""Which engine and region transcribe a language: a documented policy, decided before Chime is called.

Chime does not reject a wrong transcription setting: it fails later with a TranscriptionFailed event.
So everything is checked here, from tables kept in code:

- `medical-en-us` (default): en-US -> Transcribe Medical (Specialty from the request or the setting,
  Type CONVERSATION, ContentIdentificationType PHI), in TRANSCRIPTION_MEDICAL_REGION (eu-west-1: the
  EU region Transcribe Medical streams in; never `auto`, which can leave the EU). Every other language
  live transcription supports -> standard Transcribe in TRANSCRIPTION_STANDARD_REGION (eu-central-1),
  with PII identification only where streaming PII identification exists for that language.
- `standard-only`: every language, en-US included, on standard Transcribe in one region (for an
  operator who must keep all audio in one region).
- Anything else: 400 unsupported_transcription_language, with the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from videocall.core.errors import InvalidRequest
from videocall.core.languages import check_language

# Streaming PII identification, from the Transcribe developer guide's streaming PII page: English
# variants and es-US for certain. Newer revisions list a few more European languages; until that is
# confirmed for Chime's integration they start WITHOUT PII identification (a wrong setting would only
# fail later, as a TranscriptionFailed event). Never ja-JP, ko-KR, zh-CN, th-TH, hi-IN.
PII_IDENTIFICATION_LANGUAGES = frozenset({"en-US", "en-GB", "en-AU", "es-US"})
SPECIALTIES = ("PRIMARYCARE", "CARDIOLOGY", "NEUROLOGY", "ONCOLOGY", "RADIOLOGY", "UROLOGY")


@dataclass(frozen=True)
class TranscriptionPlan:
    language: str
    engine: str  # "medical" | "standard"
    region: str
    pii_identification: bool

    def configuration(self, specialty: str) -> dict[str, Any]:
        """Chime's TranscriptionConfiguration: exactly one engine's settings."""
        if self.engine == "medical":
            return {"EngineTranscribeMedicalSettings": {
                "LanguageCode": self.language, "Specialty": specialty, "Type": "CONVERSATION",
                "ContentIdentificationType": "PHI", "Region": self.region}}  # fmt: skip
        settings: dict[str, Any] = {"LanguageCode": self.language, "Region": self.region}
        if self.pii_identification:
            settings["ContentIdentificationType"] = "PII"
        return {"EngineTranscribeSettings": settings}


def check_specialty(specialty: str) -> str:
    if specialty not in SPECIALTIES:
        raise InvalidRequest(f"specialty must be one of {', '.join(SPECIALTIES)}.")
    return specialty


def plan(language: str, *, policy: str, medical_region: str, standard_region: str) -> TranscriptionPlan:
    check_language(language)
    if policy == "medical-en-us" and language == "en-US":
        return TranscriptionPlan(language, "medical", medical_region, pii_identification=False)
    return TranscriptionPlan(language, "standard", standard_region, language in PII_IDENTIFICATION_LANGUAGES)
