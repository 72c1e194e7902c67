-- Alert rules: each evaluation after a run, the alerts it opened and resolved, and what
-- the next evaluation of a rule compares with.

CREATE TABLE rule_evaluations (
    evaluation_id  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant         TEXT NOT NULL,
    rule           TEXT NOT NULL,
    run_id         BIGINT REFERENCES runs (run_id),
    evaluated_ms   BIGINT NOT NULL,
    -- opened | still_active | resolved | inactive | error
    transition     TEXT NOT NULL,
    condition_met  BOOLEAN NOT NULL,
    alert_level    TEXT,
    partial        BOOLEAN NOT NULL,
    baseline       BOOLEAN NOT NULL,
    results        BIGINT NOT NULL,
    -- Arrays of result ids; `removed` is NULL when the evaluation was partial.
    added          JSONB NOT NULL,
    removed        JSONB,
    -- Query name -> total.
    totals         JSONB NOT NULL,
    error          TEXT,
    -- Webhook deliveries (pending until delivered or failed).
    deliveries     JSONB NOT NULL DEFAULT '[]',
    alert_id       BIGINT
);
CREATE INDEX rule_evaluations_by_tenant ON rule_evaluations (tenant, run_id);

CREATE TABLE alerts (
    alert_id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant             TEXT NOT NULL,
    rule               TEXT NOT NULL,
    description        TEXT,
    level              TEXT,
    status             TEXT NOT NULL CHECK (status IN ('active', 'resolved')),
    opened_ms          BIGINT NOT NULL,
    opened_run         BIGINT,
    resolved_ms        BIGINT,
    resolved_run       BIGINT,
    last_evaluated_ms  BIGINT NOT NULL,
    results            BIGINT NOT NULL,
    -- The first result ids of the latest evaluation.
    result_ids         JSONB NOT NULL
);
CREATE INDEX alerts_by_tenant ON alerts (tenant, status, rule);

CREATE TABLE rule_state (
    tenant  TEXT NOT NULL,
    rule    TEXT NOT NULL,
    -- The rules engine's state for the next evaluation.
    state   JSONB NOT NULL,
    PRIMARY KEY (tenant, rule)
);
