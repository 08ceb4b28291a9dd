"""The sample-export simulator: contract conformance, determinism and simulation signal."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import mean

import pytest

from customer_health.contract import MANIFEST_NAME, SYSTEMS, entities, entity
from customer_health.generate import Simulator, generate_landing

START = date(2026, 3, 1)

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MONEY_RE = re.compile(r"^\d+\.\d{2}$")
INT_RE = re.compile(r"^-?\d+$")

#: Foreign keys: (system, entity, column) -> (system, entity) of the referenced record.
FOREIGN_KEYS = {
    ("crm", "contacts", "account_id"): ("crm", "accounts"),
    ("crm", "activities", "account_id"): ("crm", "accounts"),
    ("crm", "activities", "contact_id"): ("crm", "contacts"),
    ("crm", "support_tickets", "account_id"): ("crm", "accounts"),
    ("crm", "support_tickets", "contact_id"): ("crm", "contacts"),
    ("crm", "nps_responses", "account_id"): ("crm", "accounts"),
    ("crm", "nps_responses", "contact_id"): ("crm", "contacts"),
    ("billing", "customers", "account_id"): ("crm", "accounts"),
    ("billing", "subscriptions", "customer_id"): ("billing", "customers"),
    ("billing", "invoices", "customer_id"): ("billing", "customers"),
    ("billing", "invoices", "subscription_id"): ("billing", "subscriptions"),
    ("billing", "payments", "invoice_id"): ("billing", "invoices"),
    ("billing", "payments", "customer_id"): ("billing", "customers"),
}


def parse_ts(value: str) -> datetime:
    assert TS_RE.match(value), f"bad timestamp {value!r}"
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def check_value(col, value: str, where: str) -> None:
    if value == "":
        assert col.nullable, f"{where}: required column {col.name} is empty"
        return
    if col.type == "timestamp":
        parse_ts(value)
    elif col.type == "date":
        assert DATE_RE.match(value), f"{where}: bad date {value!r}"
        date.fromisoformat(value)
    elif col.type == "numeric":
        assert MONEY_RE.match(value), f"{where}: bad money {value!r}"
    elif col.type == "int":
        assert INT_RE.match(value), f"{where}: bad int {value!r}"
    elif col.type == "bool":
        assert value in ("true", "false"), f"{where}: bad bool {value!r}"
    if col.type in ("numeric", "int"):
        x = float(value)
        assert col.low is None or x >= col.low, f"{where}: {col.name}={value} below range"
        assert col.high is None or x <= col.high, f"{where}: {col.name}={value} above range"
    if col.choices:
        assert value in col.choices, f"{where}: {col.name}={value!r} not in the enum"


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def check_landing(root: Path) -> dict[tuple[str, str], list[dict[str, str]]]:
    """Checks a landing area against exports.md; returns every row per (system, entity)."""
    dates: dict[str, list[str]] = {}
    for system in SYSTEMS:
        names = sorted(p.name for p in (root / system).iterdir())
        assert names, f"no exports for {system}"
        for n in names:
            assert DATE_RE.match(n), f"unexpected folder {system}/{n}"
        dates[system] = names
    assert dates["crm"] == dates["billing"], "both systems export every day"
    first = date.fromisoformat(dates["crm"][0])
    want = [(first + timedelta(days=i)).isoformat() for i in range(len(dates["crm"]))]
    assert dates["crm"] == want, "one export folder per consecutive day"

    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    everything: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for i, export_date in enumerate(want):
        window_end = datetime.fromisoformat(export_date).replace(tzinfo=UTC)
        window_start = window_end - timedelta(days=1)
        folder_rows: dict[tuple[str, str], list[dict[str, str]]] = {}
        for system in SYSTEMS:
            folder = root / system / export_date
            expected = {e.file_name for e in entities(system)} | {MANIFEST_NAME}
            assert {p.name for p in folder.iterdir()} == expected, f"files of {folder}"
            manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
            assert manifest["export_date"] == export_date
            assert manifest["system"] == system
            assert manifest["full"] is (i == 0), f"{folder}: full flag"
            for e in entities(system):
                path = folder / e.file_name
                info = manifest["files"][e.file_name]
                assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
                header, rows = read_rows(path)
                assert tuple(header) == e.column_names, f"{path}: header"
                assert info["rows"] == len(rows), f"{path}: manifest rows"
                version = e.version_column or "responded_at"
                keys = set()
                dicts = []
                for n, row in enumerate(rows, start=2):
                    where = f"{path}:{n}"
                    assert len(row) == len(header), f"{where}: {len(row)} fields"
                    for col, value in zip(e.columns, row, strict=True):
                        check_value(col, value, where)
                    d = dict(zip(header, row, strict=True))
                    k = (d[e.key], d[version])
                    assert k not in keys, f"{where}: duplicate key+{version} {k}"
                    keys.add(k)
                    t = parse_ts(d[version])
                    assert t < window_end, f"{where}: {version} {t} after the export"
                    if i > 0:
                        assert t >= window_start, f"{where}: {version} {t} before the window"
                    dicts.append(d)
                folder_rows[(system, e.name)] = dicts
                everything[(system, e.name)].extend(dicts)
        for (system, name), dicts in folder_rows.items():
            seen[(system, name)].update(d[entity(system, name).key] for d in dicts)
        for (system, name, column), target in FOREIGN_KEYS.items():
            for d in folder_rows[(system, name)]:
                if d[column]:
                    assert d[column] in seen[target], (
                        f"{system}/{export_date}/{name}: {column}={d[column]} unknown"
                    )
    return everything


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("landing")
    calls: list[tuple[int, int]] = []
    summary = generate_landing(out, accounts=30, start=START, days=10, seed=7,
                               progress=lambda done, total: calls.append((done, total)))
    return out, summary, calls


def test_small_run_conforms_to_the_contract(small) -> None:
    out, summary, calls = small
    rows = check_landing(out)
    assert summary.folders == 10
    assert calls == [(i, 10) for i in range(1, 11)]
    assert summary.total_rows == sum(len(v) for v in rows.values())
    for (system, name), n in summary.rows.items():
        assert n == len(rows[(system, name)])
    assert len({d["account_id"] for d in rows[("crm", "accounts")]}) == 30
    # deltas hold something each day (activities at least on weekdays)
    days = sorted(p.name for p in (out / "crm").iterdir())
    assert sum(read_rows(out / "crm" / d / "activities.csv")[1] != [] for d in days[1:]) >= 5


def test_same_seed_same_bytes_other_seed_other_bytes(small, tmp_path) -> None:
    out, _, _ = small
    again, other = tmp_path / "again", tmp_path / "other"
    generate_landing(again, accounts=30, start=START, days=10, seed=7)
    generate_landing(other, accounts=30, start=START, days=10, seed=8)
    assert tree_digest(again) == tree_digest(out)
    assert tree_digest(other) != tree_digest(out)


def test_refuses_to_mix_with_an_earlier_run(small, tmp_path) -> None:
    out, _, _ = small
    with pytest.raises(FileExistsError):
        generate_landing(out, accounts=5, start=START, days=2, seed=1)
    generate_landing(tmp_path, accounts=5, start=START, days=2, seed=1)
    generate_landing(tmp_path, accounts=5, start=START, days=3, seed=1, overwrite=True)
    assert len(list((tmp_path / "crm").iterdir())) == 3


def test_text_and_timestamps_exercise_the_dialect(small) -> None:
    out, _, _ = small
    raw = b"".join(p.read_bytes() for p in out.rglob("*.csv"))
    assert b'""' in raw  # an escaped quote inside a quoted field
    assert re.search(rb'"[^"]*\n[^"]*"', raw)  # a newline inside a quoted field
    assert re.search(rb"T\d\d:\d\d:\d\d[+-]\d\d:\d\d", raw)  # offsets, not only Z
    assert re.search(rb"\d\.\d\d,", raw)


def test_files_are_what_the_csv_module_writes(small) -> None:
    """Rows are joined by hand for speed; the bytes must equal csv.writer's."""
    out, _, _ = small
    for path in sorted(out.rglob("*.csv")):
        text = path.read_text(encoding="utf-8")
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        assert buf.getvalue() == text, path


@pytest.fixture(scope="module")
def long_run(tmp_path_factory) -> tuple[Simulator, dict]:
    out = tmp_path_factory.mktemp("long")
    sim = Simulator(accounts=200, start=START, days=400, seed=11)
    sim.run(out)
    return sim, check_landing(out)


def test_long_run_has_the_lifecycle(long_run) -> None:
    _, rows = long_run
    subs = rows[("billing", "subscriptions")]
    statuses = {d["status"] for d in subs}
    assert statuses == {"trialing", "active", "past_due", "canceled", "unpaid"}
    assert {d["billing_interval"] for d in subs} == {"month", "year"}
    assert {d["status"] for d in rows[("billing", "invoices")]} == {
        "draft", "open", "paid", "void", "uncollectible"}
    assert {d["status"] for d in rows[("billing", "payments")]} == {
        "succeeded", "failed", "refunded"}
    assert len({d["currency"] for d in rows[("billing", "customers")]}) >= 4
    teams = {d["account_team"] for d in rows[("crm", "accounts")]}
    assert 6 <= len(teams) <= 8
    assert any(d["is_deleted"] == "true" for d in rows[("crm", "accounts")])
    # seat changes: one subscription with several quantities
    qty = defaultdict(set)
    for d in subs:
        qty[d["subscription_id"]].add(d["quantity"])
    assert any(len(v) > 1 for v in qty.values())
    # churn and reactivation: a customer with a new subscription after a canceled one
    canceled_at: dict[str, datetime] = {}
    started: dict[str, list[datetime]] = defaultdict(list)
    for d in subs:
        if d["status"] == "canceled":
            t = parse_ts(d["canceled_at"])
            canceled_at[d["customer_id"]] = min(t, canceled_at.get(d["customer_id"], t))
        started[d["customer_id"]].append(parse_ts(d["started_at"]))
    assert len(canceled_at) >= 10
    assert any(any(s > t for s in started[c]) for c, t in canceled_at.items())
    # an owner or team change: an account with two owners over time
    owners = defaultdict(set)
    for d in rows[("crm", "accounts")]:
        owners[d["account_id"]].add(d["owner_email"])
    assert any(len(v) > 1 for v in owners.values())


def test_long_run_has_neglect_and_a_working_week(long_run) -> None:
    _, rows = long_run
    acts = rows[("crm", "activities")]
    occurred = [parse_ts(d["occurred_at"]) for d in acts]
    weekend = sum(t.weekday() >= 5 for t in occurred)
    assert weekend < 0.1 * len(occurred)  # 2/7 of the days, far fewer touchpoints
    # neglect: an account that nobody reached out to for two months, then again
    out: dict[str, list[datetime]] = defaultdict(list)
    for d, t in zip(acts, occurred, strict=True):
        if d["direction"] == "outbound":
            out[d["account_id"]].append(t)
    gaps = [max(b - a for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False))
            for ts in out.values() if len(ts) > 20]
    assert any(g > timedelta(days=60) for g in gaps)


def test_long_run_health_drives_tickets_and_nps(long_run) -> None:
    sim, rows = long_run
    health = sim.mean_health()
    ranked = sorted(health, key=health.get)
    third = len(ranked) // 3
    low, high = set(ranked[:third]), set(ranked[-third:])

    tickets: dict[str, dict[str, str]] = {}
    for d in rows[("crm", "support_tickets")]:
        tickets[d["ticket_id"]] = d

    def urgent_share(group: set[str]) -> float:
        ts = [t for t in tickets.values() if t["account_id"] in group]
        return sum(t["priority"] in ("urgent", "high") for t in ts) / len(ts)

    def tickets_per_account(group: set[str]) -> float:
        return sum(t["account_id"] in group for t in tickets.values()) / len(group)

    def nps(group: set[str]) -> float:
        return mean(int(d["score"]) for d in rows[("crm", "nps_responses")]
                    if d["account_id"] in group)

    def csat(group: set[str]) -> float:
        return mean(int(t["csat_score"]) for t in tickets.values()
                    if t["account_id"] in group and t["csat_score"])

    assert urgent_share(low) > urgent_share(high) + 0.05
    assert tickets_per_account(low) > tickets_per_account(high)
    assert nps(low) + 1.5 < nps(high)
    assert csat(low) < csat(high)
