-- Fleet mode: a tenant's configuration lives in the store (`tenants import`), so every
-- worker runs the same one. Secrets are references (environment variable or file on
-- the worker), never values. The revision grows when the configuration changes.
ALTER TABLE tenants ADD COLUMN config TEXT;
ALTER TABLE tenants ADD COLUMN config_revision INTEGER NOT NULL DEFAULT 0;
