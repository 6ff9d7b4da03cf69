-- Data management: every form's current record and its source data verification; queries and their threads.
CREATE TABLE casebook_forms (
    subject_id        text NOT NULL,
    form              text NOT NULL,
    site              text NOT NULL,
    event_type        text NOT NULL,
    version           uuid NOT NULL,            -- the current record's event id: the form's ETag
    version_sequence  bigint NOT NULL,
    first_recorded_at timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL,
    records           integer NOT NULL,         -- 1, plus corrections, re-screens and follow-ups
    data              jsonb NOT NULL,
    verified_version  uuid,
    verified_at       timestamptz,
    verified_by       text,
    PRIMARY KEY (subject_id, form)
);
CREATE INDEX casebook_forms_site ON casebook_forms (site, recorded_at);

CREATE TABLE queries (
    query_id     uuid PRIMARY KEY,
    site         text NOT NULL,
    subject_id   text NOT NULL,
    form         text NOT NULL,
    field        text,
    check_code   text,                         -- the edit check that raised it; null for a person's query
    state        text NOT NULL CHECK (state IN ('open', 'answered', 'closed', 'reopened')),
    opened_by    text NOT NULL,
    opened_at    timestamptz NOT NULL,
    form_version uuid NOT NULL,
    answered_at  timestamptz,
    closed_at    timestamptz,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX queries_site_state ON queries (site, state);
CREATE INDEX queries_subject ON queries (subject_id);

CREATE TABLE query_messages (
    query_id   uuid NOT NULL,
    sequence   bigint NOT NULL,
    step       text NOT NULL CHECK (step IN ('opened', 'answered', 'closed', 'reopened')),
    actor      text NOT NULL,
    actor_role text,
    at         timestamptz NOT NULL,
    text       text,
    PRIMARY KEY (query_id, sequence)
);

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON casebook_forms, queries, query_messages TO trial_projections;
GRANT SELECT ON casebook_forms, queries, query_messages TO trial_gateway;

-- A correction's changes, old → new per field, beside the record that made them.
ALTER TABLE audit_trail ADD COLUMN changes jsonb;
