-- Alert rules: each evaluation after a run, the alerts it opened and resolved, and what
-- the next evaluation of a rule compares with.

CREATE TABLE rule_evaluations (
    evaluation_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant         TEXT NOT NULL,
    rule           TEXT NOT NULL,
    run_id         INTEGER REFERENCES runs (run_id),
    evaluated_ms   INTEGER NOT NULL,
    -- opened | still_active | resolved | inactive | error
    transition     TEXT NOT NULL,
    condition_met  INTEGER NOT NULL,
    alert_level    TEXT,
    partial        INTEGER NOT NULL,
    baseline       INTEGER NOT NULL,
    results        INTEGER NOT NULL,
    -- JSON arrays of result ids; `removed` is NULL when the evaluation was partial.
    added          TEXT NOT NULL,
    removed        TEXT,
    -- JSON object: query name -> total.
    totals         TEXT NOT NULL,
    error          TEXT,
    -- JSON array of webhook deliveries (pending until delivered or failed).
    deliveries     TEXT NOT NULL DEFAULT '[]',
    alert_id       INTEGER
);
CREATE INDEX rule_evaluations_by_tenant ON rule_evaluations (tenant, run_id);

CREATE TABLE alerts (
    alert_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant             TEXT NOT NULL,
    rule               TEXT NOT NULL,
    description        TEXT,
    level              TEXT,
    status             TEXT NOT NULL CHECK (status IN ('active', 'resolved')),
    opened_ms          INTEGER NOT NULL,
    opened_run         INTEGER,
    resolved_ms        INTEGER,
    resolved_run       INTEGER,
    last_evaluated_ms  INTEGER NOT NULL,
    results            INTEGER NOT NULL,
    -- JSON array: the first result ids of the latest evaluation.
    result_ids         TEXT NOT NULL
);
CREATE INDEX alerts_by_tenant ON alerts (tenant, status, rule);

CREATE TABLE rule_state (
    tenant  TEXT NOT NULL,
    rule    TEXT NOT NULL,
    -- The rules engine's state for the next evaluation (JSON).
    state   TEXT NOT NULL,
    PRIMARY KEY (tenant, rule)
);
