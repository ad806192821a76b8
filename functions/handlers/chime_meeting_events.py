"""EventBridge `Chime Meeting State Change` -> meeting state and attendee presence (videocall.events)."""

from videocall.events import lambda_entry, on_meeting_event

handler = lambda_entry(on_meeting_event)
