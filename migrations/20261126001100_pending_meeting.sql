-- meetings context: a create whose CreateMeeting succeeded but whose CreateAttendee was throttled (or
-- Chime was unavailable) keeps the meeting Chime made on its 'creating' row, so the client's retry, or
-- another create of the same appointment meanwhile, adds its attendee without calling CreateMeeting
-- again: under Chime's rate limit every repeated CreateMeeting spent a call of the budget. Not the
-- meeting_id column: that one is unique and names the meeting a session activated with.
ALTER TABLE video_call_sessions ADD COLUMN pending_meeting jsonb;
