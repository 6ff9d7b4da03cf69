-- The database lock for analysis, as recorded (one row, once).
CREATE TABLE database_lock (
    trial_id         text PRIMARY KEY,
    through_sequence bigint NOT NULL,
    subjects         integer NOT NULL,
    locked_at        timestamptz NOT NULL,
    locked_by        text NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON database_lock TO trial_projections;
GRANT SELECT ON database_lock TO trial_gateway;

-- The export files as of the lock, made once by the reporting service from the record through the lock's
-- sequence: what every export serves from then on, byte for byte, whatever safety information comes after.
-- Not a read model of its own: a function of the record through `through_sequence`, kept (never rebuilt).
CREATE TABLE frozen_exports (
    name             text PRIMARY KEY,
    content          text NOT NULL,
    through_sequence bigint NOT NULL
);
GRANT SELECT, INSERT ON frozen_exports TO trial_projections;
GRANT SELECT ON frozen_exports TO trial_gateway;
