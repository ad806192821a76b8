"""EventBridge `Chime Meeting State Change` events -> session state.

Delivery is best effort (missing, repeated, late): every update here is idempotent and
order-tolerant. Events other than chime:MeetingEnded are counted and otherwise ignored for now.
"""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from videocall.core.observability import logger, metrics, tracer
from videocall.runtime import runtime


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    detail = event.detail
    event_type = detail.get("eventType", "")
    meeting_id = detail.get("meetingId")
    if event_type == "chime:MeetingEnded" and meeting_id:
        changed = runtime().service.record_meeting_ended(meeting_id, int(detail.get("timestamp", 0)), event.get_id)
        logger.info("meeting ended event", extra={"meeting_id": meeting_id, "changed": changed})
        return {"handled": event_type, "changed": changed}
    return {"ignored": event_type}
