-- Development only: the services' roles with throwaway passwords (production: CloudNativePG managed roles).
CREATE ROLE trial_projections LOGIN PASSWORD 'projections-dev-only';
CREATE ROLE trial_gateway LOGIN PASSWORD 'gateway-dev-only';
