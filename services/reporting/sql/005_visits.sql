-- The surgery, each visit's window and status, and the end of participation.
ALTER TABLE subjects
    ADD COLUMN surgery_date      date,
    ADD COLUMN withdrawn_on      date,
    ADD COLUMN withdrawal_reason text,
    ADD COLUMN completed_on      date;

CREATE TABLE procedures (
    subject_id         text PRIMARY KEY,
    site               text NOT NULL,
    procedure_date     date NOT NULL,
    surgeon            text NOT NULL,
    anaesthesia        text NOT NULL,
    recipient_area_cm2 numeric(6, 1) NOT NULL,
    follicular_units   integer NOT NULL,
    donor_site         text NOT NULL,
    fat_harvest_site   text,
    harvested_fat_ml   numeric(6, 1),
    ecm_svf_gel_ml     numeric(6, 1),
    event_id           uuid NOT NULL,
    corrections        integer NOT NULL DEFAULT 0,
    recorded_at        timestamptz NOT NULL
);

CREATE TABLE visits (
    subject_id            text NOT NULL,
    visit                 text NOT NULL,
    site                  text NOT NULL,
    target_date           date NOT NULL,
    window_start          date NOT NULL,
    window_end            date NOT NULL,
    status                text NOT NULL CHECK (status IN ('scheduled', 'completed', 'missed')),
    in_window             boolean,
    visit_date            date,
    study_day             integer,
    hair_density_per_cm2  numeric(5, 1),
    grafts_surviving      integer,
    follicle_survival_pct numeric(5, 1),
    satisfaction          integer,
    mlossi                integer,
    losdi                 integer,
    photo_reference       text,
    event_id              uuid,
    corrections           integer NOT NULL DEFAULT 0,
    recorded_at           timestamptz,
    PRIMARY KEY (subject_id, visit)
);
CREATE INDEX visits_status ON visits (site, visit, status);
