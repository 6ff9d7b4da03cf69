-- Source data verification item by item: which items of which record a monitor checked, when and who.
CREATE TABLE verified_items (
    subject_id  text NOT NULL,
    form        text NOT NULL,
    item        text NOT NULL,
    version     uuid NOT NULL,
    verified_at timestamptz NOT NULL,
    verified_by text NOT NULL,
    PRIMARY KEY (subject_id, form, version, item)
);

GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON verified_items TO trial_projections;
GRANT SELECT ON verified_items TO trial_gateway;
