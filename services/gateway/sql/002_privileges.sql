-- The idempotency keys are the gateway's own table: nobody else reads or writes them.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'trial_gateway') THEN
        CREATE ROLE trial_gateway LOGIN;
    END IF;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO trial_gateway;
