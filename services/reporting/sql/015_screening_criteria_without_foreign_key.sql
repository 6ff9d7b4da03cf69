-- The screening log's criteria keep no foreign key to their screening. A read model has one writer, its
-- projection, and is checked against a rebuild from the record; the key's check on every criterion row was
-- more than half of what Postgres spent on a screening (20 rows each), the largest part of a rebuild.
-- A correction deletes the criteria it replaces itself (`DELETE_CORRECTED`).
ALTER TABLE screening_criteria DROP CONSTRAINT screening_criteria_subject_id_screening_number_fkey;
