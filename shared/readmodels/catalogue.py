"""Every read model by name, with the tables it owns: the projections write them, the operators grant their
durable consumer, the rebuild resets and compares them."""

from enum import StrEnum

# The reporting service feeds every read model from one consumer of the record (`projection-read-models`).
READ_MODELS_FEED = "read-models"


class ReadModel(StrEnum):
    SUBJECTS = "subjects"
    SCREENING_LOG = "screening_log"
    RANDOMIZATIONS = "randomizations"
    VISITS = "visits"
    SAFETY = "safety"
    AUDIT_TRAIL = "audit_trail"
    DATA_MANAGEMENT = "data_management"


TABLES: dict[ReadModel, tuple[str, ...]] = {
    ReadModel.SUBJECTS: ("subjects", "consent_versions"),
    ReadModel.SCREENING_LOG: ("screening_log", "screening_criteria"),
    ReadModel.RANDOMIZATIONS: ("randomizations", "enrollment"),
    ReadModel.VISITS: ("procedures", "visits", "scalp_photographs", "endpoint_assessments"),
    ReadModel.SAFETY: ("adverse_events", "sae_alerts", "protocol_deviations"),
    ReadModel.AUDIT_TRAIL: ("audit_trail",),
    ReadModel.DATA_MANAGEMENT: (
        "casebook_forms",
        "verified_items",
        "queries",
        "query_messages",
        "signatures",
        "database_lock",
        "protocol_amendments",
        "amendment_sites",
    ),
}
