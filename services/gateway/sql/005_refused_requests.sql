-- Every request refused for want of a right (403), with who asked: what a blinded assessor (or anyone) tried to
-- read or do beyond their role. Kept; never changed by the gateway.
CREATE TABLE refused_requests (
    refusal_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    refused_at timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    role       text NOT NULL,
    method     text NOT NULL,
    path       text NOT NULL,
    detail     text NOT NULL
);
CREATE INDEX refused_requests_actor ON refused_requests (actor, refused_at);

GRANT SELECT, INSERT ON refused_requests TO trial_gateway;
