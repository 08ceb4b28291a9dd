"""Nightly reports for account teams, built from the `marts` schema alone.

`publish_reports` renders every team's page (HTML and CSV) and the night's index into
`CHW_REPORTS_DIR/<as_of_date>/` atomically and points `latest` at the newest night;
`deliver_reports` e-mails each team its own page. See docs/reports.md.
"""

from customer_health.reporting.delivery import (
    DeliveryResult,
    build_message,
    deliver_from_env,
    deliver_reports,
    load_recipients,
    recipients_file_from_env,
)
from customer_health.reporting.publish import (
    PublishResult,
    ReportError,
    TeamReport,
    publish_reports,
    safe_file_stem,
)

__all__ = [
    "DeliveryResult",
    "PublishResult",
    "ReportError",
    "TeamReport",
    "build_message",
    "deliver_from_env",
    "deliver_reports",
    "load_recipients",
    "publish_reports",
    "recipients_file_from_env",
    "safe_file_stem",
]
