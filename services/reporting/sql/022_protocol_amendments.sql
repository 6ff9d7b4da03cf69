-- Every amendment of the protocol (its whole definition kept, so each version stays readable), each site's day for
-- it and when it was recorded in force there; and the consent form versions each subject signed, by record (a
-- correction replaces its record's), which the re-consent work list reads.
CREATE TABLE protocol_amendments (
    version              text PRIMARY KEY,
    amends               text NOT NULL,
    summary              text NOT NULL,
    summary_zh           text NOT NULL,
    consent_form_version text,
    migrates             text[] NOT NULL,
    reschedules          boolean NOT NULL,
    definition           json NOT NULL,  -- json, not jsonb: the order of items is part of a form
    deployed_at          timestamptz NOT NULL,
    deployed_by          text NOT NULL,
    event_id             uuid NOT NULL
);

CREATE TABLE amendment_sites (
    version      text NOT NULL,
    site         text NOT NULL,
    effective_on date NOT NULL,
    in_force_at  timestamptz,
    PRIMARY KEY (version, site)
);

CREATE TABLE consent_versions (
    record_id  uuid PRIMARY KEY,
    subject_id text NOT NULL,
    site       text NOT NULL,
    version    text NOT NULL,
    signed_on  date NOT NULL
);
CREATE INDEX consent_versions_subject ON consent_versions (subject_id, version);

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON protocol_amendments, amendment_sites, consent_versions
    TO trial_projections;
GRANT SELECT ON protocol_amendments, amendment_sites, consent_versions TO trial_gateway;

-- The protocol version each form's current record was made under: the casebook shows the form as that version has
-- it. (Null for a record made before the read model kept it: a rebuild fills it in.)
ALTER TABLE casebook_forms ADD COLUMN protocol_version text;
