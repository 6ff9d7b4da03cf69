-- Every POST's Idempotency-Key and the first answer it got, so a retry never makes a second fact.
CREATE TABLE idempotency_keys (
    scope         text NOT NULL,             -- the token's actor: keys of different people never collide
    key           text NOT NULL,
    request_hash  text NOT NULL,             -- method, path and body of the first request
    state         text NOT NULL CHECK (state IN ('in_flight', 'done')),
    leased_until  timestamptz,               -- an in-flight claim left by a crashed replica expires
    status_code   integer,
    response_body bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    PRIMARY KEY (scope, key)
);
