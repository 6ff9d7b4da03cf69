-- Every read of a scalp photograph (a source document): who, with which role, which image, when. Kept; never
-- changed by the gateway.
CREATE TABLE photograph_reads (
    read_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    read_at    timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    role       text NOT NULL,
    site       text NOT NULL,
    subject_id text NOT NULL,
    sha256     text NOT NULL,
    thumbnail  boolean NOT NULL
);
CREATE INDEX photograph_reads_subject ON photograph_reads (subject_id, read_at);

GRANT SELECT, INSERT ON photograph_reads TO trial_gateway;
