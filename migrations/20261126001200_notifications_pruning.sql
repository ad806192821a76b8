-- notifications context: the daily retention job deletes call rings past RETENTION_DAYS_CALL_RINGS (a
-- ring only matters while its call's events arrive) and devices idle past DEVICE_IDLE_DAYS (FCM refuses
-- a token inactive for 270 days); these indexes keep its deletes off a sequential scan as rings grow.
CREATE INDEX call_rings_created_at ON call_rings (created_at);
CREATE INDEX push_devices_updated_at ON push_devices (updated_at);
