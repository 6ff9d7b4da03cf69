-- Tokens their holder ended before they expired (a sign-out): refused from then on, kept until they expire.
CREATE TABLE ended_tokens (
    issuer     text NOT NULL,
    token_id   text NOT NULL,
    expires_at timestamptz NOT NULL,
    ended_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, token_id)
);

GRANT SELECT, INSERT, DELETE ON ended_tokens TO trial_gateway;
