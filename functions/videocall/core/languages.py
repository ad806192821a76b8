"""The languages live transcription supports (Chime's EngineTranscribeSettings.LanguageCode enum).

es-ES, which the old app's example used, is not among them. Checked at create (enableTranscription)
and at start, before Chime is called: Chime would accept a wrong one and fail later.
"""

from __future__ import annotations

from typing import Literal, get_args

from videocall.core.errors import UnsupportedTranscriptionLanguage

# The request bodies' type: the OpenAPI document shows it as an enum, and any other value is refused
# at validation with the error below (videocall.http), whether transcription is asked for or not.
TranscriptionLanguage = Literal[
    "en-US", "en-GB", "es-US", "fr-CA", "fr-FR", "en-AU", "it-IT",
    "de-DE", "pt-BR", "ja-JP", "ko-KR", "zh-CN", "th-TH", "hi-IN",
]  # fmt: skip
TRANSCRIPTION_LANGUAGES: tuple[str, ...] = get_args(TranscriptionLanguage)
LANGUAGE_FIELDS = ("transcriptionLanguage", "language")  # the body fields holding one


def unsupported_language() -> UnsupportedTranscriptionLanguage:
    return UnsupportedTranscriptionLanguage(
        # Never echo the value sent: the list of what is supported says enough.
        "This transcriptionLanguage is not supported by live transcription; use one of: "
        f"{', '.join(TRANSCRIPTION_LANGUAGES)}.",
        details={"supportedLanguages": list(TRANSCRIPTION_LANGUAGES)},
    )


def check_language(language: str) -> str:
    if language not in TRANSCRIPTION_LANGUAGES:
        raise unsupported_language()
    return language
