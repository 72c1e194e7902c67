-- Manual triggers (`trigger`, the console's "run now"): recorded in the store, so a
-- trigger given to one process reaches the scheduler of another.
ALTER TABLE tenants ADD COLUMN trigger_requested_ms BIGINT;
