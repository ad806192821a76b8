"""Errors of the domain. Raised deep, turned into HTTP in exactly one place (videocall.http).

A message is shown to the caller: it must never carry a token, a JoinToken, a name or any other
patient data, and never an upstream error text (those can echo request values).
"""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"
    message = "The request is not valid."

    def __init__(self, message: str | None = None, *, details: dict | None = None) -> None:
        self.message = message or type(self).message
        self.details = details
        super().__init__(self.message)


# --- 400: the request itself ---------------------------------------------------------------
class InvalidRequest(DomainError):
    code = "invalid_request"


class MalformedJson(DomainError):
    code = "malformed_json"
    message = "The request body is not valid JSON."


class UnknownAction(DomainError):
    code = "unknown_action"
    message = "action must be one of create, join, batch-join, end."


class UnsupportedTranscriptionLanguage(DomainError):
    code = "unsupported_transcription_language"


class BodyTooLarge(DomainError):
    status = 413
    code = "body_too_large"
    message = "The request body is too large."


# --- 401: who is calling ---------------------------------------------------------------------
class AuthenticationError(DomainError):
    status = 401
    code = "unauthenticated"


class TokenMissing(AuthenticationError):
    code = "token_missing"
    message = "Send a Firebase ID token in x-firebase-token or Authorization: Bearer."


class TokenExpired(AuthenticationError):
    code = "token_expired"
    message = "The ID token has expired; refresh it and retry."


class TokenInvalid(AuthenticationError):
    code = "token_invalid"
    message = "The ID token could not be verified (signature, issuer or audience)."


class UserNotRegistered(AuthenticationError):
    code = "user_not_registered"
    message = "The token is valid but belongs to no registered user."


# --- 403 / 404 / 409 / 410: what the caller may do ------------------------------------------
class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    message = "You may not do this."


class NotAParticipant(Forbidden):
    code = "not_a_participant"
    message = "You are not a participant of this appointment."


class VideoNotEnabled(Forbidden):
    code = "video_not_enabled"
    message = "Video is not enabled for this appointment."


class NotAllowedToEnd(Forbidden):
    code = "not_allowed_to_end"
    message = "Only the provider or the meeting's creator may end it."


class NotAllowedToAddAttendees(Forbidden):
    code = "not_allowed_to_add_attendees"
    message = "Only the appointment's provider, or clinical staff the provider added, may add attendees."


class NotAClinicalController(Forbidden):
    code = "not_a_clinical_controller"
    message = "Only the appointment's provider, or clinical staff the provider added, may do this."


class NotAllowedToRecordConsent(Forbidden):
    code = "not_allowed_to_record_consent"
    message = "Only the patient records consent."


class RecordingsNotAvailable(Forbidden):
    code = "recordings_not_available"
    message = "Recordings of this appointment are available to its provider only."


class AdminOnly(Forbidden):
    code = "admin_only"
    message = "This is an administrator's operation."


class PatientNotFound(DomainError):
    status = 404
    code = "patient_not_found"
    message = "No such patient."


class AppointmentNotFound(DomainError):
    status = 404
    code = "appointment_not_found"
    message = "No such appointment."


class InstallationInUse(DomainError):
    status = 409
    code = "installation_in_use"
    message = (
        "This installation is registered to another user: sign out there first, or register it with the "
        "device's current FCM token."
    )


class DeviceNotFound(DomainError):
    # Also the answer for another user's installation: nobody learns which installations exist.
    status = 404
    code = "device_not_found"
    message = "No such device registered for you."


class ConsentRequired(DomainError):
    status = 409
    code = "consent_required"
    message = "The patient has not granted consent for this."


class LegalHold(DomainError):
    status = 409
    code = "legal_hold"
    message = "The appointment is under a legal hold: nothing of it may be deleted until the hold is lifted."


class MeetingInProgress(DomainError):
    status = 409
    code = "meeting_in_progress"
    message = "A meeting of this appointment is live: end it before erasing."


class AppointmentErased(DomainError):
    status = 409
    code = "appointment_erased"
    message = "The appointment's content was erased (or is being erased)."


class RecordingInProgress(DomainError):
    status = 409
    code = "recording_in_progress"
    message = "A recording of this appointment is running: stop it or end the meeting first."


class RecordingLimitReached(DomainError):
    status = 409
    code = "recording_limit_reached"
    message = "The video service cannot start another recording now; the meeting itself continues."


class MeetingNotFound(DomainError):
    # Also the answer for a meeting that exists but the caller is not part of: an outsider
    # must not learn whether a meeting exists.
    status = 404
    code = "meeting_not_found"
    message = "No such meeting."


class AppointmentNotOpen(DomainError):
    status = 409
    code = "appointment_not_open"
    message = "The appointment is completed, cancelled or erased."


class CreateInProgress(DomainError):
    status = 409
    code = "create_in_progress"
    message = "The meeting is being created; retry shortly."


class AdmissionDenied(Forbidden):
    code = "admission_denied"
    message = "The clinician did not admit you to this consultation."


class ParticipantRemoved(Forbidden):
    code = "participant_removed"
    message = "You were removed from this consultation; the clinician can admit you again."


class WaitingRoom(DomainError):
    status = 409
    code = "waiting_room"
    message = (
        "This consultation has a waiting room, which this version of the app cannot use; "
        "update the app to wait for the clinician to admit you."
    )


class MeetingEnded(DomainError):
    status = 410
    code = "meeting_ended"
    message = "The meeting has ended. Create the appointment's meeting again to start a new one."


# --- 5xx: upstream ----------------------------------------------------------------------------
class UpstreamError(DomainError):
    status = 502
    code = "chime_error"
    message = "The video service rejected the request."


class ServiceUnavailable(DomainError):
    status = 503
    code = "service_unavailable"
    message = "A service this needs is unavailable; retry later."

    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    message = "The database is unavailable; retry later."


class ChimeUnavailable(ServiceUnavailable):
    code = "chime_unavailable"
    message = "The video service is unavailable; retry later."


class RecordingUnavailable(ServiceUnavailable):
    code = "recording_unavailable"
    message = "Recording is unavailable right now; the meeting itself continues. Retry later."


class StorageUnavailable(ServiceUnavailable):
    code = "storage_unavailable"
    message = "Recording storage is unavailable; retry later."


# --- chat (videocall.chat) --------------------------------------------------------------------
class MessageTooLong(DomainError):
    code = "message_too_long"
    message = "The message text is longer than 1,500 bytes of UTF-8."


class MessageEmpty(DomainError):
    code = "message_empty"
    message = "A message needs text or an attachment."


class UnknownReaction(DomainError):
    code = "unknown_reaction"
    message = "That reaction is not one of the allowed set."


class InvalidCursor(DomainError):
    code = "invalid_cursor"
    message = "The cursor is not valid for this conversation; start again without one."


class ReplyToNotFound(DomainError):
    code = "reply_to_not_found"
    message = "replyTo is not a message of this conversation you can see."


class AttachmentNotAvailable(DomainError):
    code = "attachment_not_available"
    message = "attachmentId is not a file you uploaded for this appointment, or it was sent already."


class MessageNotFound(DomainError):
    status = 404
    code = "message_not_found"
    message = "No such message in this conversation."


class AttachmentNotFound(DomainError):
    status = 404
    code = "attachment_not_found"
    message = "No such attachment in this conversation."


class AttachmentTooLarge(DomainError):
    status = 413
    code = "attachment_too_large"
    message = "The file is larger than the attachment size limit."


class AttachmentTypeNotAllowed(DomainError):
    status = 415
    code = "attachment_type_not_allowed"
    message = "This kind of file cannot be attached."


class AttachmentNotUploaded(DomainError):
    status = 409
    code = "attachment_not_uploaded"
    message = "The file has not been uploaded yet."


class AttachmentNotScanned(DomainError):
    # Retry-After: the malware scan usually finishes within seconds of the upload.
    status = 409
    code = "attachment_not_scanned"
    message = "The file is still being checked for malware; retry shortly."

    def __init__(self, message: str | None = None, *, retry_after: int = 15) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AttachmentBlocked(DomainError):
    status = 422
    code = "attachment_blocked"
    message = "The file did not pass the malware scan and is not served."
