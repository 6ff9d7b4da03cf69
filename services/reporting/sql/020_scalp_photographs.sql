-- The scalp photographs recorded at each visit: the image is in the object store under its SHA-256.
CREATE TABLE scalp_photographs (
    sha256      text NOT NULL,
    subject_id  text NOT NULL,
    site        text NOT NULL,
    visit       text NOT NULL,
    view        text NOT NULL,
    media_type  text NOT NULL,
    width       integer NOT NULL,
    height      integer NOT NULL,
    size_bytes  integer NOT NULL,
    event_id    uuid NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (subject_id, sha256)
);
CREATE INDEX scalp_photographs_visit ON scalp_photographs (subject_id, visit);

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON scalp_photographs TO trial_projections;
GRANT SELECT ON scalp_photographs TO trial_gateway;
