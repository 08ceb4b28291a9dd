"""The export contract (`shared/spec/exports.md`) as data.

One definition serves the sample-data generator, the loader, the raw tables and
the tests, so the contract is written down exactly once in code.
"""

from __future__ import annotations

from dataclasses import dataclass

from customer_health.modelling import dbt_facts

SYSTEMS: tuple[str, ...] = ("crm", "billing")

#: Column types the contract knows, mapped to the PostgreSQL type of the raw layer.
PG_TYPES: dict[str, str] = {
    "text": "text",
    "int": "integer",
    "numeric": "numeric",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # one of PG_TYPES
    nullable: bool = False
    choices: tuple[str, ...] | None = None  # the contract's enums
    low: float | None = None  # inclusive range, where the contract gives one
    high: float | None = None

    @property
    def pg_type(self) -> str:
        return PG_TYPES[self.type]


@dataclass(frozen=True)
class Entity:
    system: str
    name: str
    key: str
    columns: tuple[Column, ...]

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"

    @property
    def raw_table(self) -> str:
        return f"{self.system}_{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if not c.nullable)

    @property
    def version_column(self) -> str | None:
        """The column that orders a record's versions (None: records never change)."""
        return "updated_at" if "updated_at" in self.column_names else None

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.system}/{self.file_name} has no column {name!r}")


def _c(name: str, type_: str, nullable: bool = False, **kw) -> Column:
    return Column(name, type_, nullable, **kw)


ACTIVITY_TYPES = ("call", "email", "meeting", "qbr", "site_visit", "webinar", "other")
#: The account segments: var `segments` of dbt_project.yml, which the marts' tests and the
#: health weights read too (order matters to the sample-data generator).
SEGMENTS: tuple[str, ...] = dbt_facts.segments()

ENTITIES: tuple[Entity, ...] = (
    Entity("crm", "accounts", "account_id", (
        _c("account_id", "text"),
        _c("account_name", "text"),
        _c("industry", "text", True),
        _c("segment", "text", choices=SEGMENTS),
        _c("region", "text"),
        _c("account_team", "text"),
        _c("owner_email", "text"),
        _c("created_at", "timestamp"),
        _c("updated_at", "timestamp"),
        _c("is_deleted", "bool"),
    )),
    Entity("crm", "contacts", "contact_id", (
        _c("contact_id", "text"),
        _c("account_id", "text"),
        _c("full_name", "text"),
        _c("email", "text", True),
        _c("title", "text", True),
        _c("is_primary", "bool"),
        _c("created_at", "timestamp"),
        _c("updated_at", "timestamp"),
        _c("is_deleted", "bool"),
    )),
    Entity("crm", "activities", "activity_id", (
        _c("activity_id", "text"),
        _c("account_id", "text"),
        _c("contact_id", "text", True),
        _c("activity_type", "text", choices=ACTIVITY_TYPES),
        _c("direction", "text", choices=("inbound", "outbound")),
        _c("occurred_at", "timestamp"),
        _c("owner_email", "text", True),
        _c("subject", "text", True),
        _c("updated_at", "timestamp"),
    )),
    Entity("crm", "support_tickets", "ticket_id", (
        _c("ticket_id", "text"),
        _c("account_id", "text"),
        _c("contact_id", "text", True),
        _c("priority", "text", choices=("low", "normal", "high", "urgent")),
        _c("status", "text", choices=("open", "pending", "solved", "closed")),
        _c("opened_at", "timestamp"),
        _c("first_response_at", "timestamp", True),
        _c("resolved_at", "timestamp", True),
        _c("csat_score", "int", True, low=1, high=5),
        _c("updated_at", "timestamp"),
    )),
    Entity("crm", "nps_responses", "response_id", (
        _c("response_id", "text"),
        _c("account_id", "text"),
        _c("contact_id", "text", True),
        _c("score", "int", low=0, high=10),
        _c("responded_at", "timestamp"),
        _c("comment", "text", True),
    )),
    Entity("billing", "customers", "customer_id", (
        _c("customer_id", "text"),
        _c("account_id", "text"),
        _c("billing_email", "text", True),
        _c("currency", "text"),
        _c("created_at", "timestamp"),
        _c("updated_at", "timestamp"),
    )),
    Entity("billing", "subscriptions", "subscription_id", (
        _c("subscription_id", "text"),
        _c("customer_id", "text"),
        _c("plan_code", "text"),
        _c("billing_interval", "text", choices=("month", "year")),
        _c("quantity", "int", low=0),
        _c("mrr", "numeric", low=0),
        _c("currency", "text"),
        _c("status", "text", choices=("trialing", "active", "past_due", "canceled", "unpaid")),
        _c("started_at", "timestamp"),
        _c("current_term_end", "date"),
        _c("canceled_at", "timestamp", True),
        _c("updated_at", "timestamp"),
    )),
    Entity("billing", "invoices", "invoice_id", (
        _c("invoice_id", "text"),
        _c("customer_id", "text"),
        _c("subscription_id", "text", True),
        _c("issued_at", "timestamp"),
        _c("due_at", "timestamp"),
        _c("amount_due", "numeric", low=0),
        _c("amount_paid", "numeric", low=0),
        _c("currency", "text"),
        _c("status", "text", choices=("draft", "open", "paid", "void", "uncollectible")),
        _c("paid_at", "timestamp", True),
        _c("updated_at", "timestamp"),
    )),
    Entity("billing", "payments", "payment_id", (
        _c("payment_id", "text"),
        _c("invoice_id", "text"),
        _c("customer_id", "text"),
        _c("amount", "numeric", low=0),
        _c("currency", "text"),
        _c("status", "text", choices=("succeeded", "failed", "refunded")),
        _c("attempted_at", "timestamp"),
        _c("failure_code", "text", True),
        _c("updated_at", "timestamp"),
    )),
)

#: The key of each export folder's optional manifest file.
MANIFEST_NAME = "_manifest.json"


def entities(system: str | None = None) -> tuple[Entity, ...]:
    """Every entity of the contract, or those of one system."""
    if system is not None and system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}: expected one of {', '.join(SYSTEMS)}")
    return tuple(e for e in ENTITIES if system is None or e.system == system)


def entity(system: str, name: str) -> Entity:
    for e in entities(system):
        if e.name == name:
            return e
    known = ", ".join(e.name for e in entities(system))
    raise KeyError(f"{system} has no entity {name!r}: expected one of {known}")
