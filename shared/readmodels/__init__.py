"""The read models' contract: their names and tables (`catalogue`), the states and views the gateway reads
(`subjects`, `alerts`), and the reports over them (CONSORT, enrollment, visit compliance, safety, audit,
SDTM exports). The reporting service's projections write through these names and states; the gateway and
the reporting command line read through these queries. The tables themselves are created by the reporting
service's migrations."""
