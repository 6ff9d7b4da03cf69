-- Users whose access a data manager revoked: the gateway refuses their tokens.
CREATE TABLE revoked_users (
    user_id    text PRIMARY KEY,
    revoked_at timestamptz NOT NULL,
    revoked_by text NOT NULL
);

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON revoked_users TO trial_projections;
GRANT SELECT ON revoked_users TO trial_gateway;
