"""The reports and exports built from the read models: SDTM, ADaM, ODM, endpoints, CONSORT, trial summaries and the
data-management reports. The gateway answers report requests with them and the reporting service freezes the
exports with them at the database lock (docs/architecture.md, "Where the reports live")."""
