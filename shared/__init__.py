"""What two or more parts of the trial backend use, by purpose: `contracts` (what they agree on),
`runtime` (how a service runs), `readmodels` (the reports over the read models)."""
