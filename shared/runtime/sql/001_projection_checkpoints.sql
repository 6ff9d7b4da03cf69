-- Where each projection stands in the event stream; written in the same transaction as its rows.
CREATE TABLE projection_checkpoints (
    projection    text PRIMARY KEY,
    last_sequence bigint NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
