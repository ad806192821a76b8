"""The consent rules. The patient records consent for an appointment (or, with CONSENT_SOURCE=external,
the provider records consent gathered outside this system); the appointment's participants see it.

What a change means for running work (a withdrawal stops recording at once, a grant starts a
recording a clinician asked for) is done by the face (videocall.workflows), which asks the
recordings context: this context knows nothing of recordings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from videocall.consent.repository import ConsentRepository
from videocall.core.access import Appointment, authorize_record_consent, authorize_view_appointment
from videocall.core.audit import AuditEntry
from videocall.core.context import AccessGate, appointment_from, caller_from
from videocall.core.db import Row

KINDS = ("recording", "transcription", "ai_processing")


@dataclass(frozen=True)
class Consent:
    appointment_id: str
    recording: str = "not_given"
    transcription: str = "not_given"
    ai_processing: str = "not_given"
    source: str | None = None
    recorded_by: str | None = None
    updated_at: str | None = None

    @classmethod
    def from_row(cls, appointment_id: str, row: Row) -> Consent:
        if row.get("recording") is None:
            return cls(appointment_id)
        return cls(
            appointment_id, row["recording"], row["transcription"], row["ai_processing"], row["source"],
            row["recorded_by"], row["updated_at"].isoformat(),
        )  # fmt: skip

    def body(self) -> dict[str, Any]:
        return {
            "appointmentId": self.appointment_id, "recording": self.recording,
            "transcription": self.transcription, "aiProcessing": self.ai_processing, "source": self.source,
            "recordedBy": self.recorded_by, "updatedAt": self.updated_at,
        }  # fmt: skip


@dataclass(frozen=True)
class ConsentChange:
    consent: Consent
    appointment: Appointment
    actor: str
    withdrawn: frozenset[str]  # kinds that went from granted to refused
    granted: frozenset[str]  # kinds that are granted now and were not before


class ConsentService:
    def __init__(self, consents: ConsentRepository, gate: AccessGate, *, source: str = "patient") -> None:
        self._consents = consents
        self._gate = gate
        self._source = source

    def get(self, firebase_uid: str, appointment_id: str, request_id: str | None) -> Consent:
        row = self._consents.appointment_context(firebase_uid, appointment_id)
        caller = caller_from(row)
        assert row is not None
        self._gate.check(
            lambda: authorize_view_appointment(caller, appointment_from(row)), caller=caller, action="consent.view",
            row=row, appointment_id=appointment_id, request_id=request_id,
        )  # fmt: skip
        return Consent.from_row(appointment_id, row)

    def record(
        self, firebase_uid: str, appointment_id: str, decisions: dict[str, str], request_id: str | None
    ) -> ConsentChange:
        row = self._consents.appointment_context(firebase_uid, appointment_id)
        caller = caller_from(row)
        assert row is not None
        appointment = self._gate.check(
            lambda: authorize_record_consent(caller, appointment_from(row), source=self._source),
            caller=caller, action="consent.update", row=row, appointment_id=appointment_id, request_id=request_id,
        )  # fmt: skip
        before = Consent.from_row(appointment_id, row)
        saved = self._consents.record(
            appointment_id=appointment_id, recording=decisions["recording"],
            transcription=decisions["transcription"], ai_processing=decisions["ai_processing"],
            source=self._source, recorded_by=caller.user_id,
            audit=AuditEntry(caller.user_id, "consent.update", appointment_id, appointment.patient_id, None,
                             request_id, details={**decisions, "source": self._source}),
        )  # fmt: skip
        after = Consent.from_row(appointment_id, saved)
        withdrawn = frozenset(k for k in KINDS if getattr(before, k) == "granted" and getattr(after, k) == "refused")
        granted = frozenset(k for k in KINDS if getattr(before, k) != "granted" and getattr(after, k) == "granted")
        return ConsentChange(after, appointment, caller.user_id, withdrawn, granted)

    def of_appointments(self, appointment_ids: list[str]) -> list[dict[str, Any]]:
        return [
            Consent.from_row(r["appointment_id"], r).body() for r in self._consents.of_appointments(appointment_ids)
        ]

    def reset(self, appointment_ids: list[str]) -> int:
        return self._consents.erase(appointment_ids)
