-- Investigators' electronic signatures; a signature whose covered records are no longer current is invalidated.
CREATE TABLE signatures (
    signature_id     uuid PRIMARY KEY,
    site             text NOT NULL,
    subject_id       text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('eligibility', 'casebook')),
    meaning          text NOT NULL,
    signer           text NOT NULL,
    printed_name     text NOT NULL,
    signed_at        timestamptz NOT NULL,
    signed_at_site   text NOT NULL,
    authenticated_at timestamptz NOT NULL,
    covers           jsonb NOT NULL,   -- form → the record (version) signed
    covered_sha256   text NOT NULL
);
CREATE INDEX signatures_subject ON signatures (subject_id, kind, signed_at);

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON signatures TO trial_projections;
GRANT SELECT ON signatures TO trial_gateway;
