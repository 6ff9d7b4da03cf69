-- Screening outcomes on the subject, and the screening log with every criterion's result (CONSORT).
ALTER TABLE subjects
    ADD COLUMN eligible               boolean,
    ADD COLUMN screenings             integer NOT NULL DEFAULT 0,
    ADD COLUMN last_screened_on       date,
    ADD COLUMN screen_failure_reasons text[] NOT NULL DEFAULT '{}',
    ADD COLUMN consent_withdrawn_on   date;

CREATE TABLE screening_log (
    subject_id       text NOT NULL,
    screening_number integer NOT NULL,
    site             text NOT NULL,
    screening_date   date NOT NULL,
    eligible         boolean NOT NULL,
    bmi              numeric(4, 1),
    protocol_version text NOT NULL,
    recorded_at      timestamptz NOT NULL,
    sequence         bigint NOT NULL,
    PRIMARY KEY (subject_id, screening_number)
);

CREATE TABLE screening_criteria (
    subject_id       text NOT NULL,
    screening_number integer NOT NULL,
    code             text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('inclusion', 'exclusion')),
    outcome          text NOT NULL CHECK (outcome IN ('met', 'not_met', 'missing')),
    blocks           boolean NOT NULL,
    value            text,
    rule             text NOT NULL,
    PRIMARY KEY (subject_id, screening_number, code),
    FOREIGN KEY (subject_id, screening_number) REFERENCES screening_log ON DELETE CASCADE
);
CREATE INDEX screening_criteria_blocking ON screening_criteria (code) WHERE blocks;
