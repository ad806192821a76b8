"""EventBridge `Chime Media Pipeline State Change` -> recording state and artifacts (videocall.events)."""

from videocall.events import lambda_entry, on_pipeline_event

handler = lambda_entry(on_pipeline_event)
