"""Chat: the in-call chat's durable history (messages, receipts, reactions) and its attachments."""
