-- Every event, as recorded: who, what, when, why, under which protocol version, in answer to what.
CREATE TABLE audit_trail (
    sequence         bigint PRIMARY KEY,
    event_id         uuid NOT NULL UNIQUE,
    event_type       text NOT NULL,
    schema_version   integer NOT NULL,
    site             text,
    subject_id       text NOT NULL,
    recorded_at      timestamptz NOT NULL,
    actor            text NOT NULL,
    actor_role       text,
    actor_site       text,
    actor_token      text,
    reason           text,
    protocol_version text NOT NULL,
    correlation_id   text NOT NULL,
    causation_id     text,
    data             jsonb NOT NULL
);
CREATE INDEX audit_trail_subject ON audit_trail (subject_id, sequence);
CREATE INDEX audit_trail_time ON audit_trail (recorded_at);

-- What the exports' DM domain needs from the screening form (age in years and sex only).
ALTER TABLE screening_log ADD COLUMN age_years integer, ADD COLUMN sex text;
