-- An adverse event's causality is the investigator's assessment: a coordinator reports without it, and it
-- arrives with the investigator's follow-up or correction. Until then it is unknown, not "not related".
ALTER TABLE adverse_events ALTER COLUMN fat_graft_relatedness DROP NOT NULL;
ALTER TABLE adverse_events ALTER COLUMN hair_transplantation_relatedness DROP NOT NULL;
