-- Site-local dates, refusals of consent, and visits no longer expected after a withdrawal or a death.
-- Rows written before this migration get the new columns on the next `reporting rebuild`.
ALTER TABLE randomizations ADD COLUMN randomized_on date;  -- the site's calendar date of randomized_at
ALTER TABLE subjects
    ADD COLUMN randomized_on           date,
    ADD COLUMN consent_declined_on     date,
    ADD COLUMN consent_declined_reason text;

ALTER TABLE visits DROP CONSTRAINT visits_status_check;
ALTER TABLE visits
    ADD CONSTRAINT visits_status_check CHECK (status IN ('scheduled', 'completed', 'missed', 'not_expected')),
    ADD COLUMN not_expected_reason text;
