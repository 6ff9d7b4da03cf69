-- Whether a subject's casebook is locked, and since when (null: open).
ALTER TABLE subjects ADD COLUMN casebook_locked_at timestamptz;
