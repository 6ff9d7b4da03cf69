"""The safety team's terminal line: the site's awareness in the site's own time, beside UTC."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from services.safety.watch import describe
from shared.contracts.alerts import AlertKind, SaeAlertMessage
from shared.contracts.protocol import load_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)
AWARE = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)  # 07:30 on the 25th in Guangzhou


def alert(site: str) -> SaeAlertMessage:
    return SaeAlertMessage(
        kind=AlertKind.RAISED,
        alert_id=uuid4(),
        ae_id=uuid4(),
        site=site,
        subject=f"{site}-001",
        term="Scalp necrosis",
        grade=3,
        seriousness=("hospitalization_or_prolongation",),
        site_aware_at=AWARE,
        reported_at=AWARE,
        raised_at=AWARE,
        late=False,
    )


def test_the_sites_awareness_reads_in_the_sites_time_and_in_utc() -> None:
    line = describe(alert("NFH"), now=AWARE + timedelta(hours=2), again=False, protocol=PROTOCOL)
    assert "site aware 2026-11-25 07:30 Asia/Shanghai (23:30 UTC)" in line
    assert "alert age 2h00m" in line


def test_a_site_the_protocol_does_not_name_reads_in_utc() -> None:
    line = describe(alert("ZZZ"), now=AWARE, again=True, protocol=PROTOCOL)
    assert "site aware 2026-11-24 23:30 UTC" in line and "again" in line
