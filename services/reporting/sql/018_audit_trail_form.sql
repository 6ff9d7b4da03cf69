-- The casebook form each record is of (`screening`, `visit-M1`, `ae-<id>`), for a form's history item by item;
-- empty for facts that are no form's record. Rows recorded before it are filled by `trial rebuild`.
ALTER TABLE audit_trail ADD COLUMN form text;
CREATE INDEX audit_trail_form ON audit_trail (subject_id, form, sequence) WHERE form IS NOT NULL;
