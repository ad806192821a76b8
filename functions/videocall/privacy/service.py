"""Retention, the right of access, erasure and legal holds, for every context's appointment content.

- Retention (scheduled): each kind is deleted after its configured number of days, every object
  version included; appointments under a legal hold are skipped (medical-record law can require
  keeping what GDPR would otherwise erase). The bucket lifecycle rule is a backstop a little later.
- Export (admin): one JSON document of what this system holds about a patient: the person,
  appointments, meetings, consent, each context's content (metadata and links that expire) and the
  audit trail.
- Erasure (admin): deletes the content of one appointment or of all of a patient's appointments,
  pseudonymizes the user and appointment rows the audit trail refers to, keeps the audit rows and adds
  one saying what was deleted (counts, never contents). A second run finds nothing and says so.
  A legal hold refuses erasure (409 legal_hold).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from videocall.core.access import Caller, authorize_admin
from videocall.core.audit import AuditEntry
from videocall.core.context import caller_from
from videocall.core.errors import (
    AppointmentErased,
    AppointmentNotFound,
    InvalidRequest,
    LegalHold,
    MeetingInProgress,
    PatientNotFound,
)
from videocall.core.observability import logger
from videocall.core.records import AppointmentContent
from videocall.privacy.repository import PrivacyRepository


@dataclass(frozen=True)
class ErasureResult:
    appointment_ids: list[str]
    deleted: dict[str, int]
    pseudonymized_patient: bool

    @property
    def nothing_found(self) -> bool:
        return not any(self.deleted.values())


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


class PrivacyService:
    def __init__(
        self, privacy: PrivacyRepository, holders: Sequence[AppointmentContent], *, retention_days: dict[str, int],
        consents: Any, devices: Any = None,
    ) -> None:  # fmt: skip
        self._privacy = privacy
        self._holders = list(holders)
        self._retention_days = retention_days
        self._consents = consents  # the consent context's service (of_appointments)
        self._devices = devices  # the notifications context's service (erase_users): a person's push devices

    @property
    def content_kinds(self) -> list[str]:
        """Every kind of content an erasure covers (recordings, transcripts, messages, ...)."""
        return [holder.kind for holder in self._holders]

    # --- retention (scheduled) ----------------------------------------------------------------------
    def apply_retention(self, request_id: str | None = None) -> dict[str, int]:
        held = self._privacy.held_appointments()
        deleted = {
            holder.kind: holder.expire(
                older_than_days=self._retention_days[holder.kind], held=held, request_id=request_id
            )
            for holder in self._holders
        }
        deleted["chime_events_seen"] = self._privacy.prune_seen_events()
        if self._devices is not None:
            deleted.update(self._devices.prune(held=held))
        logger.info("retention applied", extra={"deleted": deleted, "held_appointments": len(held)})
        return deleted

    # --- right of access ---------------------------------------------------------------------------
    def export_patient(self, firebase_uid: str, patient_id: str, request_id: str | None) -> dict[str, Any]:
        admin = self._admin(firebase_uid)
        patient = self._patient(patient_id)
        appointments = self._privacy.appointments(patient_id=patient_id)
        ids = [a["id"] for a in appointments]
        document: dict[str, Any] = {
            "patient": {"id": patient["id"], "role": patient["role"], "displayName": patient["display_name"],
                        "createdAt": _iso(patient["created_at"]), "erasedAt": _iso(patient["erased_at"])},
            "appointments": [
                {"id": a["id"], "providerId": a["provider_id"], "status": a["status"],
                 "scheduledAt": _iso(a["scheduled_at"]), "erasedAt": _iso(a["erased_at"]),
                 "legalHold": a["hold_reference"] is not None}
                for a in appointments
            ],
            "meetings": [
                {"appointmentId": s["appointment_id"], "meetingId": s["meeting_id"], "status": s["status"],
                 "createdAt": _iso(s["created_at"]), "endedAt": _iso(s["ended_at"]),
                 "recordingEnabled": s["recording_enabled"], "transcriptionEnabled": s["transcription_enabled"],
                 "createdBy": s["created_by"], "endedBy": s["ended_by"], "attendees": s["attendees"]}
                for s in (self._privacy.sessions(ids) if ids else [])
            ],
            "consent": self._consents.of_appointments(ids) if ids else [],
            "content": {holder.kind: holder.export(ids, actor=admin.user_id, request_id=request_id) if ids else []
                        for holder in self._holders},
            "devices": self._devices.export_user(patient["id"]) if self._devices is not None else [],
            "auditTrail": [self._event(e) for e in self._privacy.audit_trail(patient_id=patient_id, before_id=None,
                                                                              limit=10_000)],
        }  # fmt: skip
        self._privacy.audit(
            AuditEntry(
                admin.user_id, "privacy.export", None, patient_id, None, request_id, details={"appointments": len(ids)}
            )
        )
        return document

    def audit_trail(
        self, firebase_uid: str, patient_id: str, *, before_id: int | None, limit: int, request_id: str | None
    ) -> list[dict[str, Any]]:
        admin = self._admin(firebase_uid)
        self._patient(patient_id)
        events = [self._event(e) for e in self._privacy.audit_trail(patient_id=patient_id, before_id=before_id,
                                                                     limit=limit)]  # fmt: skip
        self._privacy.audit(AuditEntry(admin.user_id, "privacy.audit_trail", None, patient_id, None, request_id))
        return events

    # --- erasure -------------------------------------------------------------------------------------
    def erase(
        self, firebase_uid: str, *, appointment_id: str | None, patient_id: str | None, request_id: str | None
    ) -> ErasureResult:
        admin = self._admin(firebase_uid)
        if bool(appointment_id) == bool(patient_id):
            raise InvalidRequest("Give exactly one of appointmentId or patientId.")
        if patient_id:
            self._patient(patient_id)
        appointments = self._privacy.appointments(patient_id=patient_id, appointment_id=appointment_id)
        if appointment_id and not appointments:
            raise AppointmentNotFound()
        held = [a["id"] for a in appointments if a["hold_reference"] is not None]
        if held:
            self._privacy.audit(AuditEntry(admin.user_id, "privacy.erase", appointment_id, patient_id, None,
                                           request_id, outcome="denied", details={"reason": "legal_hold"}))  # fmt: skip
            raise LegalHold(details={"heldAppointmentIds": held})
        live = [a["id"] for a in appointments if a["meeting_live"]]
        if live:
            raise MeetingInProgress(details={"liveAppointmentIds": live})
        ids = [a["id"] for a in appointments]
        marked = self._privacy.begin_erasure(ids) if ids else []
        if len(marked) != len(ids):  # a hold landed between the check above and the mark
            raise LegalHold(details={"heldAppointmentIds": sorted(set(ids) - set(marked))})
        deleted = {
            holder.kind: holder.erase(ids, actor=admin.user_id, request_id=request_id) if ids else 0
            for holder in self._holders
        }
        consent_reset = self._consents.reset(ids) if ids else 0
        # Erasing a person (not one appointment) also forgets the devices their pushes went to.
        devices_deleted = self._devices.erase_users([patient_id]) if patient_id and self._devices else 0
        subject = patient_id or (appointments[0]["patient_id"] if appointments else None)
        self._privacy.pseudonymize(
            appointment_ids=ids, patient_id=patient_id,
            audit=AuditEntry(admin.user_id, "privacy.erase", appointment_id, subject, None, request_id,
                             details={"appointments": len(ids), "deleted": deleted, "consent_reset": consent_reset,
                                      "devices_deleted": devices_deleted,
                                      "scope": "patient" if patient_id else "appointment"}),
        )  # fmt: skip
        return ErasureResult(ids, deleted, pseudonymized_patient=bool(patient_id))

    # --- legal holds ---------------------------------------------------------------------------------
    def place_hold(self, firebase_uid: str, appointment_id: str, reference: str, request_id: str | None) -> dict:
        admin = self._admin(firebase_uid)
        row = self._privacy.place_hold(
            appointment_id=appointment_id, reference=reference,
            audit=AuditEntry(admin.user_id, "privacy.legal_hold", appointment_id, None, None, request_id),
        )  # fmt: skip
        if row is None:
            state = self._privacy.appointment_state(appointment_id)
            if state is None:
                raise AppointmentNotFound()
            raise AppointmentErased()
        return {"appointmentId": appointment_id, "reference": row["reference"], "placedBy": row["placed_by"],
                "placedAt": _iso(row["placed_at"])}  # fmt: skip

    def lift_hold(self, firebase_uid: str, appointment_id: str, request_id: str | None) -> bool:
        admin = self._admin(firebase_uid)
        return self._privacy.lift_hold(
            appointment_id=appointment_id,
            audit=AuditEntry(admin.user_id, "privacy.legal_hold_lifted", appointment_id, None, None, request_id),
        )

    # --- shared --------------------------------------------------------------------------------------
    def _admin(self, firebase_uid: str) -> Caller:
        return authorize_admin(caller_from(self._privacy.caller(firebase_uid)))

    def _patient(self, patient_id: str) -> dict[str, Any]:
        row = self._privacy.patient(patient_id)
        if row is None:
            raise PatientNotFound()
        return row

    @staticmethod
    def _event(e: dict[str, Any]) -> dict[str, Any]:
        return {"id": e["id"], "occurredAt": _iso(e["occurred_at"]), "actorUserId": e["actor_user_id"],
                "action": e["action"], "outcome": e["outcome"], "appointmentId": e["appointment_id"],
                "meetingId": e["meeting_id"], "requestId": e["request_id"], "details": e["details"]}  # fmt: skip
