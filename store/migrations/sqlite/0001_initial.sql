-- Tenants, runs, the current graph of each tenant with J1's metadata, change sets.

CREATE TABLE tenants (
    tenant                TEXT PRIMARY KEY,
    account_name          TEXT,
    description           TEXT,
    polling_interval      TEXT NOT NULL DEFAULT 'ONE_DAY',
    tag_with_account_name INTEGER NOT NULL DEFAULT 0,
    -- When the scheduler runs the tenant next (epoch ms); NULL: never scheduled yet.
    next_due_ms           INTEGER,
    -- Grows with every lease; a persist with a lower fence is refused (fleet).
    fence                 INTEGER NOT NULL DEFAULT 0,
    updated_ms            INTEGER NOT NULL
);

CREATE TABLE runs (
    run_id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant                      TEXT NOT NULL REFERENCES tenants (tenant),
    trigger                     TEXT NOT NULL,
    status                      TEXT NOT NULL,
    started_ms                  INTEGER NOT NULL,
    finished_ms                 INTEGER,
    -- The tenant's first persisted run: everything in it is "created".
    baseline                    INTEGER NOT NULL DEFAULT 0,
    persisted                   INTEGER NOT NULL DEFAULT 0,
    entities                    INTEGER NOT NULL DEFAULT 0,
    relationships               INTEGER NOT NULL DEFAULT 0,
    entities_created            INTEGER NOT NULL DEFAULT 0,
    entities_updated            INTEGER NOT NULL DEFAULT 0,
    entities_deleted            INTEGER NOT NULL DEFAULT 0,
    relationships_created       INTEGER NOT NULL DEFAULT 0,
    relationships_updated       INTEGER NOT NULL DEFAULT 0,
    relationships_deleted       INTEGER NOT NULL DEFAULT 0,
    -- JSON array of the `_type`s the run could not collect completely.
    partial_types               TEXT NOT NULL DEFAULT '[]',
    error                       TEXT,
    -- summary.json of the run.
    summary                     TEXT
);
CREATE INDEX runs_by_tenant ON runs (tenant, run_id);

-- The current graph: one row per `_key` of a tenant, tombstones included.
CREATE TABLE objects (
    tenant      TEXT NOT NULL,
    key         TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('entity', 'relationship')),
    type        TEXT NOT NULL,
    -- JSON array of `_class` values.
    classes     TEXT NOT NULL,
    from_key    TEXT,
    to_key      TEXT,
    -- JSON object with sorted keys, without `_rawData`: text equality is property equality.
    properties  TEXT NOT NULL,
    raw_data    TEXT,
    created_ms  INTEGER NOT NULL,
    begin_ms    INTEGER NOT NULL,
    end_ms      INTEGER,
    version     INTEGER NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0,
    -- The last run that emitted or deleted it, and the step that emitted it.
    run_id      INTEGER NOT NULL,
    step        TEXT,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX objects_by_type ON objects (tenant, type);
CREATE INDEX objects_by_from ON objects (tenant, from_key) WHERE from_key IS NOT NULL;
CREATE INDEX objects_by_to ON objects (tenant, to_key) WHERE to_key IS NOT NULL;

-- Each run's change set.
CREATE TABLE changes (
    change_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     INTEGER NOT NULL REFERENCES runs (run_id),
    tenant     TEXT NOT NULL,
    change     TEXT NOT NULL CHECK (change IN ('created', 'updated', 'deleted')),
    kind       TEXT NOT NULL CHECK (kind IN ('entity', 'relationship')),
    key        TEXT NOT NULL,
    type       TEXT NOT NULL,
    from_key   TEXT,
    to_key     TEXT,
    -- For updates: JSON array of {name, old, new}.
    diff       TEXT
);
CREATE INDEX changes_by_run ON changes (run_id, type);
