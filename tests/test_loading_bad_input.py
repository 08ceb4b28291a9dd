"""The export contract's bad-input cases, one by one, against a real PostgreSQL.

Each test asserts the rows loaded, the rows quarantined with their reasons, and
the ledger row. Thresholds are raised where a test wants rows quarantined but the
file kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from loading_helpers import (
    ACT_HEADER,
    DAY,
    SUB_HEADER,
    act,
    csv_text,
    ledger,
    quarantine,
    query,
    raw_rows,
    sub,
    write_export,
)

from customer_health.loading import load_file

TS = "expected an ISO 8601 timestamp such as 2026-11-21T14:03:00Z or 2026-11-21T15:03:00+01:00"
NUM = "expected a decimal number with '.' as separator and no thousands separator, e.g. 1234.50"


@pytest.fixture
def db(fresh_database) -> str:
    return fresh_database()


def load_activities(db, tmp_path, rows, threshold=0.9, header=ACT_HEADER, eol="\n"):
    write_export(tmp_path, "crm", {"activities.csv": csv_text(header, rows, eol)})
    return load_file(db, tmp_path, DAY, "crm", "activities", threshold=threshold)


def test_clean_file_loads_every_type_with_provenance(db, tmp_path):
    rows = [sub(1), sub(2, quantity="-7", mrr="0.5", term_end="2028-02-29"),
            "s3,c3,pro,year,1,10,USD,canceled,2026-01-01T10:00:00,2026-12-31,"
            "2026-06-01 12:30:00.25+05:30,2026-11-20T08:00:00Z"]
    write_export(tmp_path, "billing", {"subscriptions.csv": csv_text(SUB_HEADER, rows)})
    result = load_file(db, tmp_path, DAY, "billing", "subscriptions")
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == \
        ("loaded", 3, 3, 0)
    got = query(db, "select subscription_id, quantity, mrr, current_term_end, started_at,"
                    " canceled_at, updated_at, _export_date, _source_file, _line_number"
                    " from raw.billing_subscriptions order by _line_number")
    assert got[1][1:4] == (-7, Decimal("0.5"), datetime(2028, 2, 29).date())
    assert got[0][6] == datetime(2026, 11, 20, 7, 0, tzinfo=UTC)  # +01:00 converted
    assert got[2][4] == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)  # no offset: UTC
    assert got[2][5] == datetime(2026, 6, 1, 7, 0, 0, 250000, tzinfo=UTC)
    assert got[0][7:] == (DAY, "billing/2026-11-21/subscriptions.csv", 2)
    assert [r[9] for r in got] == [2, 3, 4]
    assert quarantine(db) == []
    assert ledger(db) == [("subscriptions", "loaded", 3, 3, 0, "")]


@pytest.mark.parametrize(("value", "reason"), [
    ("2026-13-01T00:00:00Z", f"occurred_at: '2026-13-01T00:00:00Z' is not a valid timestamp: {TS}"),
    ("2026-02-30T10:00:00Z", f"occurred_at: '2026-02-30T10:00:00Z' is not a valid timestamp: {TS}"),
    ("2026-11-21T24:00:00Z",
     f"occurred_at: '2026-11-21T24:00:00Z' is not a valid time of day: {TS}"),
    ("21/11/2026 10:00", f"occurred_at: '21/11/2026 10:00' is not a valid timestamp: {TS}"),
    ("2026-11-21T10:00:00+16:00",
     f"occurred_at: '2026-11-21T10:00:00+16:00' is an impossible UTC offset: {TS}"),
    ("", "occurred_at: required value is empty"),
])
def test_bad_timestamp_is_quarantined_with_reason(db, tmp_path, value, reason):
    rows = [act(1), act(2, occurred=value), act(3)]
    result = load_activities(db, tmp_path, rows)
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == \
        ("loaded", 3, 2, 1)
    assert raw_rows(db, "crm_activities") == [("a1", 2), ("a3", 4)]
    assert quarantine(db) == [(3, rows[1], reason)]
    assert ledger(db)[0][:5] == ("activities", "loaded", 3, 2, 1)
    assert f"line 3: {reason}" in ledger(db)[0][5]


def test_wrong_number_of_fields(db, tmp_path):
    rows = [act(1), act(2) + ",extra", "a3,acc1", act(4)]
    result = load_activities(db, tmp_path, rows)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4, 2, 2)
    assert raw_rows(db, "crm_activities") == [("a1", 2), ("a4", 5)]
    assert quarantine(db) == [
        (3, rows[1], "expected 9 fields as in the header, found 10"),
        (4, rows[2], "expected 9 fields as in the header, found 2"),
    ]


def test_thousands_separator_in_a_number(db, tmp_path):
    rows = [sub(1), sub(2, mrr='"1,234.50"'), sub(3, mrr="1,234.50"), sub(4, mrr="1e3")]
    write_export(tmp_path, "billing", {"subscriptions.csv": csv_text(SUB_HEADER, rows)})
    result = load_file(db, tmp_path, DAY, "billing", "subscriptions", threshold=0.9)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4, 1, 3)
    assert raw_rows(db, "billing_subscriptions", "subscription_id, mrr") == \
        [("s1", Decimal("1234.50"))]
    assert quarantine(db) == [
        (3, rows[1], f"mrr: '1,234.50' is not a decimal number: {NUM}"),
        (4, rows[2], "expected 12 fields as in the header, found 13"),
        (5, rows[3], f"mrr: '1e3' is not a decimal number: {NUM}"),
    ]


def test_bad_int_bool_and_date(db, tmp_path):
    rows = [sub(1, quantity="4.5"), sub(2, quantity="3000000000"),
            sub(3, term_end="2026-02-29"), sub(4)]
    write_export(tmp_path, "billing", {"subscriptions.csv": csv_text(SUB_HEADER, rows)})
    load_file(db, tmp_path, DAY, "billing", "subscriptions", threshold=1)
    assert [r[2] for r in quarantine(db)] == [
        "quantity: '4.5' is not a whole number: expected a whole number such as 42",
        "quantity: '3000000000' is out of the integer range: expected a whole number such as 42",
        "current_term_end: '2026-02-29' is not a valid date: expected a date YYYY-MM-DD",
    ]
    header = ("account_id,account_name,industry,segment,region,account_team,owner_email,"
              "created_at,updated_at,is_deleted")
    base = "acc1,Acme,,smb,emea,team-a,am@example.com,2026-01-01T00:00:00Z,2026-01-01T00:00:00Z"
    write_export(tmp_path, "crm", {"accounts.csv": csv_text(
        header, [base + ",true", base.replace("acc1", "acc2") + ",yes"])})
    result = load_file(db, tmp_path, DAY, "crm", "accounts", threshold=1)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (2, 1, 1)
    assert query(db, "select account_id, is_deleted from raw.crm_accounts") == [("acc1", True)]
    assert quarantine(db)[-1][2] == "is_deleted: 'yes' is not a boolean: expected true or false"


def test_required_value_empty_and_several_reasons(db, tmp_path):
    rows = [act(1), ",acc1,,call,outbound,2026-11-20T10:00:00Z,,,nope", act(3)]
    load_activities(db, tmp_path, rows)
    assert quarantine(db) == [(3, rows[1], "activity_id: required value is empty; "
                                           f"updated_at: 'nope' is not a valid timestamp: {TS}")]
    # a quoted empty field is empty (NULL) too
    rows = [act(1), act(2).replace("am@example.com", '""'), '"",acc1' + act(3)[6:]]
    load_activities(db, tmp_path, rows)
    assert raw_rows(db, "crm_activities", "activity_id, owner_email") == \
        [("a1", "am@example.com"), ("a2", None)]


def test_bad_quoting_mid_file_and_nul(db, tmp_path):
    rows = [act(1), act(2, subject='"closed"early'), act(3, subject="nul\x00here"), act(4)]
    result = load_activities(db, tmp_path, rows)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4, 2, 2)
    assert quarantine(db) == [
        (3, rows[1], "not valid CSV: a closing quote must be followed by a comma or the line "
                     "end (',' expected after '\"')"),
        (4, rows[2].replace("\x00", "\\x00"), "subject: contains a NUL character"),
    ]


def test_multiline_quoted_fields_keep_physical_line_numbers(db, tmp_path):
    rows = [act(1), act(2, subject='"two\nlines, ""quoted"""'), act(3, occurred="bad"),
            act(4, subject='"a\n\nb"'), "", act(5, occurred="2028-02-29T23:59:59.123456Z")]
    result = load_activities(db, tmp_path, rows)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (5, 4, 1)
    assert raw_rows(db, "crm_activities", "activity_id, subject, _line_number") == [
        ("a1", "hello", 2), ("a2", 'two\nlines, "quoted"', 3), ("a4", "a\n\nb", 6),
        ("a5", "hello", 10)]
    assert quarantine(db) == [(5, rows[2], f"occurred_at: 'bad' is not a valid timestamp: {TS}")]


def test_missing_required_column_rejects_the_file(db, tmp_path):
    header = ACT_HEADER.replace("occurred_at,", "")
    rows = [act(1).replace("2026-11-20T10:00:00Z,", "", 1)]
    result = load_activities(db, tmp_path, rows, header=header)
    message = ("missing required column(s): occurred_at (the header has: activity_id, "
               "account_id, contact_id, activity_type, direction, owner_email, subject, "
               "updated_at)")
    assert (result.status, result.message) == ("rejected", message)
    assert raw_rows(db, "crm_activities") == []
    assert ledger(db) == [("activities", "rejected", 0, 0, 0, message)]


def test_headerless_file_gets_a_hint(db, tmp_path):
    write_export(tmp_path, "crm", {"activities.csv": csv_text(act(1), [act(2)])})
    result = load_file(db, tmp_path, DAY, "crm", "activities")
    assert result.status == "rejected"
    assert result.message.endswith("is the header row missing?")


def test_missing_optional_column_loads_as_null(db, tmp_path):
    header = ACT_HEADER.replace(",subject", "")
    rows = [act(1).replace(",hello", "")]
    result = load_activities(db, tmp_path, rows, header=header)
    assert result.status == "loaded"
    assert result.message == "optional column(s) subject not in the file: loaded as empty"
    assert raw_rows(db, "crm_activities", "activity_id, subject") == [("a1", None)]


def test_not_utf8_rejects_the_file_naming_the_line(db, tmp_path):
    data = csv_text(ACT_HEADER, [act(1), act(2, subject="café")]).encode("latin-1")
    write_export(tmp_path, "crm", {"activities.csv": data})
    result = load_file(db, tmp_path, DAY, "crm", "activities")
    message = "not UTF-8: byte 0xe9 on line 3 is not valid UTF-8 (re-export the file as UTF-8)"
    assert (result.status, result.message) == ("rejected", message)
    assert raw_rows(db, "crm_activities") == []
    # rows_read: the one record that ended before the line holding the bad byte
    assert ledger(db) == [("activities", "rejected", 1, 0, 0, message)]
    assert query(db, "select file_sha256 from audit.load_ledger")[0][0] == result.sha256 != None  # noqa: E711


def test_bom_and_crlf(db, tmp_path):
    rows = [act(1, subject="naïve"), act(2, subject='"multi\r\nline"'), act(3)]
    data = b"\xef\xbb\xbf" + csv_text(ACT_HEADER, rows, eol="\r\n").encode()
    write_export(tmp_path, "crm", {"activities.csv": data})
    result = load_file(db, tmp_path, DAY, "crm", "activities")
    assert (result.status, result.rows_read, result.rows_loaded) == ("loaded", 3, 3)
    assert raw_rows(db, "crm_activities", "activity_id, subject, updated_at, _line_number") == [
        ("a1", "naïve", datetime(2026, 11, 20, 10, tzinfo=UTC), 2),
        ("a2", "multi\r\nline", datetime(2026, 11, 20, 10, tzinfo=UTC), 3),
        ("a3", "hello", datetime(2026, 11, 20, 10, tzinfo=UTC), 5)]


def test_broken_quote_at_the_end_rejects_the_file(db, tmp_path):
    rows = [act(1), act(2), 'a3,acc1,,call,outbound,2026-11-20T10:00:00Z,x,"never closed']
    result = load_activities(db, tmp_path, rows)
    message = ("a quoted field opened on line 4 is never closed before the end of the file "
               "(a broken quote, or a truncated file)")
    assert (result.status, result.message) == ("rejected", message)
    assert raw_rows(db, "crm_activities") == []
    assert ledger(db) == [("activities", "rejected", 2, 0, 0, message)]


def test_column_order_may_vary(db, tmp_path):
    names = ACT_HEADER.split(",")
    order = list(reversed(names))
    values = dict(zip(names, act(1).split(","), strict=True))
    line = ",".join(values[n] for n in order)
    result = load_activities(db, tmp_path, [line], header=",".join(order))
    assert result.status == "loaded"
    assert raw_rows(db, "crm_activities", "activity_id, account_id, owner_email") == \
        [("a1", "acc1", "am@example.com")]


def test_threshold_rejects_the_whole_file_but_keeps_the_reasons(db, tmp_path):
    rows = [act(i) for i in range(1, 99)] + [act(99, occurred="x"), act(100, occurred="y")]
    result = load_activities(db, tmp_path, rows, threshold=0.01)
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == \
        ("rejected", 100, 0, 2)
    load_id = query(db, "select load_id from audit.load_ledger")[0][0]
    assert result.message == (
        "2 of 100 rows (2.00%) do not fit their types, above the quarantine threshold of "
        f"1.00%: the whole file is held back (first: line 100: occurred_at: 'x' is not a valid "
        f"timestamp: {TS}; all in audit.quarantine with load_id {load_id})")
    assert raw_rows(db, "crm_activities") == []
    assert [(r[0], r[1]) for r in quarantine(db)] == [(100, rows[98]), (101, rows[99])]
    assert query(db, "select distinct load_id from audit.quarantine") == [(load_id,)]
    # one bad row in a hundred is at the threshold, not above it: loaded
    rows[99] = act(100)
    assert load_activities(db, tmp_path, rows, threshold=0.01).status == "loaded"


def test_threshold_comes_from_settings(db, tmp_path, monkeypatch):
    monkeypatch.setenv("CHW_QUARANTINE_THRESHOLD", "0.5")
    rows = [act(1), act(2, occurred="x")]
    write_export(tmp_path, "crm", {"activities.csv": csv_text(ACT_HEADER, rows)})
    assert load_file(db, tmp_path, DAY, "crm", "activities").status == "loaded"


def test_empty_file_and_header_only(db, tmp_path):
    write_export(tmp_path, "crm", {"activities.csv": b""})
    result = load_file(db, tmp_path, DAY, "crm", "activities")
    assert (result.status, result.message) == \
        ("rejected", "the file is empty: expected a header row")
    write_export(tmp_path, "crm", {"activities.csv": ACT_HEADER})  # no final newline either
    result = load_file(db, tmp_path, DAY, "crm", "activities")
    assert (result.status, result.rows_read) == ("loaded", 0)


def test_copy_end_marker_inside_a_quoted_field_is_quarantined(db, tmp_path):
    rows = [act(1, subject='"a\n\\.\nb"'), act(2, subject="\\."), act(3)]
    result = load_activities(db, tmp_path, rows)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    assert raw_rows(db, "crm_activities", "activity_id, subject") == \
        [("a2", "\\."), ("a3", "hello")]
    assert quarantine(db) == [(2, rows[0], "subject: a line holding only '\\.' inside a quoted "
                                           "field cannot be loaded by PostgreSQL COPY")]
