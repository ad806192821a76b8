"""The privacy context's routes: admin only (the data-protection officer's tools)."""

from __future__ import annotations

from videocall.core import errors as e
from videocall.core.routing import DELETE_ATTACHMENTS, DELETE_RECORDINGS, READ_ATTACHMENTS, READ_RECORDINGS, Route
from videocall.privacy import models

ROUTES: tuple[Route, ...] = (
    Route(
        "export_patient", "GET", "/admin/patients/{patientId}/export", "handlers.export_patient",
        "Right of access: everything this system holds about a patient, as one JSON document (admin)",
        models.PatientExport, 200, (*READ_RECORDINGS, *READ_ATTACHMENTS),
        errors=(e.AdminOnly, e.PatientNotFound),
    ),
    Route(
        "patient_audit_trail", "GET", "/admin/patients/{patientId}/audit-trail", "handlers.patient_audit_trail",
        "Who touched which of the patient's calls, newest first (admin)", models.AuditTrailResponse, 200,
        errors=(e.AdminOnly, e.PatientNotFound),
    ),
    Route(
        "erase", "POST", "/admin/erasures", "handlers.erase",
        "GDPR erasure of one appointment's or one patient's content; pseudonymizes, keeps the audit trail (admin)",
        models.ErasureResponse, 200, (*DELETE_RECORDINGS, *DELETE_ATTACHMENTS),
        errors=(e.AdminOnly, e.AppointmentNotFound, e.PatientNotFound, e.LegalHold, e.MeetingInProgress,
                e.RecordingInProgress),
    ),
    Route(
        "place_legal_hold", "PUT", "/admin/appointments/{appointmentId}/legal-hold", "handlers.place_legal_hold",
        "Suspend deletion of an appointment's content (admin)", models.LegalHoldResponse, 200,
        errors=(e.AdminOnly, e.AppointmentNotFound, e.AppointmentErased),
    ),
    Route(
        "lift_legal_hold", "DELETE", "/admin/appointments/{appointmentId}/legal-hold", "handlers.lift_legal_hold",
        "Lift a legal hold (admin)", models.LegalHoldResponse, 200,
        errors=(e.AdminOnly, e.AppointmentNotFound),
    ),
)  # fmt: skip
