-- Tenants, runs, the current graph of each tenant with J1's metadata, change sets.
-- The same tables as SQLite's 0001, in PostgreSQL's types: properties are jsonb.

CREATE TABLE tenants (
    tenant                TEXT PRIMARY KEY,
    account_name          TEXT,
    description           TEXT,
    polling_interval      TEXT NOT NULL DEFAULT 'ONE_DAY',
    tag_with_account_name BOOLEAN NOT NULL DEFAULT false,
    -- When the scheduler runs the tenant next (epoch ms); NULL: never scheduled yet.
    next_due_ms           BIGINT,
    -- Grows with every lease; a persist with a lower fence is refused (fleet).
    fence                 BIGINT NOT NULL DEFAULT 0,
    updated_ms            BIGINT NOT NULL
);

CREATE TABLE runs (
    run_id                      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant                      TEXT NOT NULL REFERENCES tenants (tenant),
    trigger                     TEXT NOT NULL,
    status                      TEXT NOT NULL,
    started_ms                  BIGINT NOT NULL,
    finished_ms                 BIGINT,
    -- The tenant's first persisted run: everything in it is "created".
    baseline                    BOOLEAN NOT NULL DEFAULT false,
    persisted                   BOOLEAN NOT NULL DEFAULT false,
    entities                    BIGINT NOT NULL DEFAULT 0,
    relationships               BIGINT NOT NULL DEFAULT 0,
    entities_created            BIGINT NOT NULL DEFAULT 0,
    entities_updated            BIGINT NOT NULL DEFAULT 0,
    entities_deleted            BIGINT NOT NULL DEFAULT 0,
    relationships_created       BIGINT NOT NULL DEFAULT 0,
    relationships_updated       BIGINT NOT NULL DEFAULT 0,
    relationships_deleted       BIGINT NOT NULL DEFAULT 0,
    -- The `_type`s the run could not collect completely.
    partial_types               JSONB NOT NULL DEFAULT '[]',
    error                       TEXT,
    -- summary.json of the run.
    summary                     JSONB
);
CREATE INDEX runs_by_tenant ON runs (tenant, run_id);

-- The current graph: one row per `_key` of a tenant, tombstones included.
CREATE TABLE objects (
    tenant      TEXT NOT NULL,
    key         TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('entity', 'relationship')),
    type        TEXT NOT NULL,
    -- Array of `_class` values.
    classes     JSONB NOT NULL,
    from_key    TEXT,
    to_key      TEXT,
    -- Every property but `_rawData`; jsonb equality is property equality.
    properties  JSONB NOT NULL,
    -- `_rawData` as the JSON text the API sent (jsonb would reorder it).
    raw_data    TEXT,
    created_ms  BIGINT NOT NULL,
    begin_ms    BIGINT NOT NULL,
    end_ms      BIGINT,
    version     BIGINT NOT NULL,
    deleted     BOOLEAN NOT NULL DEFAULT false,
    -- The last run that emitted or deleted it, and the step that emitted it.
    run_id      BIGINT NOT NULL,
    step        TEXT,
    PRIMARY KEY (tenant, key)
);
-- The graph as queries and the console read it: by type (entities first, in key
-- order, which is also the order of `stream_objects`), and edges by either endpoint.
CREATE INDEX objects_by_type ON objects (tenant, kind, type, key);
CREATE INDEX objects_by_from ON objects (tenant, from_key) WHERE from_key IS NOT NULL;
CREATE INDEX objects_by_to ON objects (tenant, to_key) WHERE to_key IS NOT NULL;

-- Each run's change set.
CREATE TABLE changes (
    change_id  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     BIGINT NOT NULL REFERENCES runs (run_id),
    tenant     TEXT NOT NULL,
    change     TEXT NOT NULL CHECK (change IN ('created', 'updated', 'deleted')),
    kind       TEXT NOT NULL CHECK (kind IN ('entity', 'relationship')),
    key        TEXT NOT NULL,
    type       TEXT NOT NULL,
    from_key   TEXT,
    to_key     TEXT,
    -- For updates: array of {name, old, new}.
    diff       JSONB
);
CREATE INDEX changes_by_run ON changes (run_id, type);
