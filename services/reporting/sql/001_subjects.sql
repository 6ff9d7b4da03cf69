-- One row per trial subject with its current state; derived from events only, rebuilt by replay.
CREATE TABLE subjects (
    subject_id           text PRIMARY KEY,
    site                 text NOT NULL,
    state                text NOT NULL,
    consent_form_version text,
    consented_on         date,
    first_event_at       timestamptz NOT NULL,
    last_event_at        timestamptz NOT NULL,
    last_event_type      text NOT NULL,
    last_sequence        bigint NOT NULL
);
CREATE INDEX subjects_site_state ON subjects (site, state, subject_id);
