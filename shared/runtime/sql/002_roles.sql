-- The roles services connect as: never the owner, never a superuser. Created here if the cluster
-- has not got them yet (CloudNativePG declares them as managed roles in production).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'trial_projections') THEN
        CREATE ROLE trial_projections LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'trial_gateway') THEN
        CREATE ROLE trial_gateway LOGIN;
    END IF;
END
$$;

GRANT SELECT, INSERT, UPDATE ON projection_checkpoints TO trial_projections;
GRANT SELECT ON projection_checkpoints TO trial_gateway;
