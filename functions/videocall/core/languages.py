"""The languages live transcription supports (Chime's EngineTranscribeSettings.LanguageCode enum).

es-ES, which the old app's example used, is not among them. Checked at create (enableTranscription)
and at start, before Chime is called: Chime would accept a wrong one and fail later.
"""

from __future__ import annotations

from videocall.core.errors import UnsupportedTranscriptionLanguage

TRANSCRIPTION_LANGUAGES = (
    "en-US", "en-GB", "es-US", "fr-CA", "fr-FR", "en-AU", "it-IT",
    "de-DE", "pt-BR", "ja-JP", "ko-KR", "zh-CN", "th-TH", "hi-IN",
)  # fmt: skip


def check_language(language: str) -> str:
    if language not in TRANSCRIPTION_LANGUAGES:
        raise UnsupportedTranscriptionLanguage(
            # Never echo the value sent: the list of what is supported says enough.
            "This transcriptionLanguage is not supported by live transcription; use one of: "
            f"{', '.join(TRANSCRIPTION_LANGUAGES)}.",
            details={"supportedLanguages": list(TRANSCRIPTION_LANGUAGES)},
        )
    return language
