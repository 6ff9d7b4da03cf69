"""Reports on the read models (CONSORT, enrollment, visit compliance, safety, audit) and SDTM exports.

Shared because the gateway serves them and the reporting service's command line writes them.
"""
