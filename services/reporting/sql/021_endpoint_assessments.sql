-- The blinded outcome assessor's counts at each visit, made on its photographs: the endpoint reports use them
-- where present, and say so.
CREATE TABLE endpoint_assessments (
    subject_id           text NOT NULL,
    visit                text NOT NULL,
    site                 text NOT NULL,
    grafts_surviving     integer NOT NULL,
    hair_density_per_cm2 numeric NOT NULL,
    photographs          text[] NOT NULL,
    assessed_by          text NOT NULL,
    event_id             uuid NOT NULL,
    recorded_at          timestamptz NOT NULL,
    PRIMARY KEY (subject_id, visit)
);

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON endpoint_assessments TO trial_projections;
GRANT SELECT ON endpoint_assessments TO trial_gateway;
