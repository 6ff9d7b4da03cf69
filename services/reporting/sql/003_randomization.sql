-- Allocations on the subject, every randomization (invalidated ones stay, marked), and the trial's enrollment.
ALTER TABLE subjects
    ADD COLUMN arm                      text,
    ADD COLUMN randomization_number     integer UNIQUE,
    ADD COLUMN randomized_at            timestamptz,
    ADD COLUMN randomization_invalidated boolean NOT NULL DEFAULT false;

CREATE TABLE randomizations (
    randomization_number integer PRIMARY KEY,
    subject_id           text NOT NULL UNIQUE,
    site                 text NOT NULL,
    stratum              text NOT NULL,
    arm                  text NOT NULL,
    list_version         integer NOT NULL,
    randomized_at        timestamptz NOT NULL,
    actor                text NOT NULL,
    invalidated          boolean NOT NULL DEFAULT false,
    invalidation_reason  text,
    invalidated_by       text,
    sequence             bigint NOT NULL
);

CREATE TABLE enrollment (
    trial_id      text PRIMARY KEY,
    closed_at     timestamptz NOT NULL,
    randomized    integer NOT NULL,
    cap           integer NOT NULL
);
