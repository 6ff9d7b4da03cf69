-- Adverse events as they stand after follow-ups, SAE alerts with their acknowledgement, deviations.
ALTER TABLE subjects ADD COLUMN died_on date;

CREATE TABLE adverse_events (
    ae_id          uuid PRIMARY KEY,
    subject_id     text NOT NULL,
    site           text NOT NULL,
    term           text NOT NULL,
    onset_date     date NOT NULL,
    site_aware_at  timestamptz NOT NULL,
    reported_at    timestamptz NOT NULL,
    grade          integer NOT NULL CHECK (grade BETWEEN 1 AND 5),
    seriousness    text[] NOT NULL,
    serious        boolean NOT NULL,
    fat_graft_relatedness            text NOT NULL,
    hair_transplantation_relatedness text NOT NULL,
    action_taken   text NOT NULL,
    outcome        text NOT NULL,
    updated_at     timestamptz NOT NULL,
    follow_ups     integer NOT NULL DEFAULT 0
);
CREATE INDEX adverse_events_subject ON adverse_events (subject_id);

CREATE TABLE sae_alerts (
    alert_id          uuid PRIMARY KEY,
    ae_id             uuid NOT NULL,
    subject_id        text NOT NULL,
    site              text NOT NULL,
    term              text NOT NULL,
    grade             integer NOT NULL,
    seriousness       text[] NOT NULL,
    site_aware_at     timestamptz NOT NULL,
    reported_at       timestamptz NOT NULL,
    raised_at         timestamptz NOT NULL,
    late              boolean NOT NULL,
    acknowledged_at   timestamptz,
    acknowledged_by   text,
    escalations       integer NOT NULL DEFAULT 0,
    last_escalated_at timestamptz
);
CREATE INDEX sae_alerts_open ON sae_alerts (raised_at) WHERE acknowledged_at IS NULL;

CREATE TABLE protocol_deviations (
    deviation_id     uuid PRIMARY KEY,
    subject_id       text NOT NULL,
    site             text NOT NULL,
    code             text NOT NULL,
    description      text NOT NULL,
    related_event_id uuid,
    recorded_at      timestamptz NOT NULL
);
