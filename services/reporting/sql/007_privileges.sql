-- Projections write their read models (and truncate them to rebuild); the gateway only reads them.
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON
    subjects, screening_log, screening_criteria, randomizations, enrollment, adverse_events, sae_alerts,
    protocol_deviations, procedures, visits, audit_trail
    TO trial_projections;
GRANT SELECT ON
    subjects, screening_log, screening_criteria, randomizations, enrollment, adverse_events, sae_alerts,
    protocol_deviations, procedures, visits, audit_trail
    TO trial_gateway;
