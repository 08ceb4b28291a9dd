"""The loader's guarantees for native exporter formats (docs/exporters.md): bad values
quarantined with the native file, line and reason, unknown columns kept aside and named,
provenance to the native line, idempotent re-delivery, completeness by native files."""

from __future__ import annotations

from pathlib import Path

import pytest
from loading_helpers import DAY, ledger, query, write_export

from customer_health.loading import LoadError, export_folder_status, load_file
from customer_health.loading.formats import DeclarationError, load_format
from customer_health.loading.formats.declaration import FORMATS_DIR

USERS = "Id,Email,UserRoleId\n005A,am@example.com,00EA\n"
ROLES = "Id,Name\n00EA,emea-enterprise\n"
TS = "2026-11-20T10:00:00.000Z"
TASK = "Id,AccountId,WhoId,TaskSubtype,CallType,CompletedDateTime,OwnerId,Subject," \
       "LastModifiedDate,Mood__c,Status\n"
EVENT = "Id,AccountId,WhoId,Type,Direction__c,StartDateTime,OwnerId,Subject,LastModifiedDate\n"
ACCOUNT = "Id,Name,Industry,Segment__c,Region__c,Account_Team__c,OwnerId,CreatedDate," \
          "LastModifiedDate,IsDeleted\n"


@pytest.fixture
def db(fresh_database) -> str:
    return fresh_database()


@pytest.fixture
def salesforce(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHW_CRM_FORMAT", "salesforce")


def activities(tmp_path: Path, task_rows: list[str], event_rows: list[str],
               users: str = USERS) -> None:
    write_export(tmp_path, "crm", {"Task.csv": TASK + "".join(r + "\n" for r in task_rows),
                                   "Event.csv": EVENT + "".join(r + "\n" for r in event_rows),
                                   "User.csv": users})


def task(i: int, subtype: str = "Call", when: str = TS, owner: str = "005A",
         subject: str = "hi", mood: str = "") -> str:
    return f"00T{i},001A,003A,{subtype},Inbound,{when},{owner},{subject},{TS},{mood},Completed"


def quarantined(url: str) -> list[tuple]:
    return query(url, "select file_name, line_number, raw_line, reason from audit.quarantine"
                      " order by file_name, line_number")


def test_bad_native_rows_are_quarantined_with_the_native_file_line_and_reason(
        db, tmp_path, salesforce):
    activities(tmp_path,
               [task(1), task(2, subject='"two\nlines"'), task(3, subtype="Fax"),
                task(4, owner="005X"), task(5)],
               ["00UA,001A,003A,QBR,,2026-13-20T10:00:00.000Z,005A,qbr," + TS,
                "00UB,001A,00QL,Meeting,Inbound," + TS + ",005A,met," + TS])
    result = load_file(db, tmp_path, DAY, "crm", "activities", threshold=0.9)
    assert (result.status, result.file_name, result.rows_read, result.rows_loaded,
            result.rows_quarantined) == ("loaded", "Task.csv+Event.csv", 7, 4, 3)
    bad = quarantined(db)
    assert [(f, line) for f, line, _, _ in bad] == [
        ("Event.csv", 2), ("Task.csv", 5), ("Task.csv", 6)]
    assert bad[0][2].startswith("00UA,001A,003A,QBR,,2026-13-20")  # the native line, as is
    assert "occurred_at: '2026-13-20T10:00:00.000Z' is not a valid timestamp" in bad[0][3]
    assert bad[0][3].endswith("(from StartDateTime)")
    assert bad[1][3].startswith("TaskSubtype: 'Fax' has no mapping in salesforce.toml"
                                " [values.task_subtype]")
    assert bad[2][3] == "OwnerId: no row of User.csv has Id '005X'"
    rows = query(db, "select activity_id, activity_type, direction, contact_id, owner_email,"
                     " _source_file, _line_number from raw.crm_activities order by 1")
    day = DAY.isoformat()
    assert query(db, "select subject from raw.crm_activities where activity_id = '00T2'") == [
        ("two\nlines",)]  # a quoted field's line break kept
    assert rows == [
        ("00T1", "call", "inbound", "003A", "am@example.com", f"crm/{day}/Task.csv", 2),
        ("00T2", "call", "inbound", "003A", "am@example.com", f"crm/{day}/Task.csv", 3),
        ("00T5", "call", "inbound", "003A", "am@example.com", f"crm/{day}/Task.csv", 7),
        # a lead (00Q...) is no contact; an Event has no call type: its custom field
        ("00UB", "meeting", "inbound", None, "am@example.com", f"crm/{day}/Event.csv", 3)]


def test_a_quote_inside_an_unquoted_field_keeps_the_line_numbers_right(db, tmp_path,
                                                                        salesforce):
    activities(tmp_path, [task(1), task(2, subject='say "hi" now'),
                          task(3, subject='"two\nlines"'), task(4)], [])
    assert load_file(db, tmp_path, DAY, "crm", "activities").rows_loaded == 4
    assert query(db, "select activity_id, subject, _line_number from raw.crm_activities"
                     " order by 1") == [("00T1", "hi", 2), ("00T2", 'say "hi" now', 3),
                                        ("00T3", "two\nlines", 4), ("00T4", "hi", 6)]


def test_unknown_native_columns_are_kept_in_extra_and_only_undeclared_ones_are_drift(
        db, tmp_path, salesforce):
    activities(tmp_path, [task(1, mood="\"great, really\"")], [])
    result = load_file(db, tmp_path, DAY, "crm", "activities")
    assert "schema drift: unknown column(s) Task.csv: Mood__c kept in _extra" in result.message
    assert "Status" not in result.message.split("drift")[1]  # a declared `also` column
    assert query(db, "select _extra from raw.crm_activities") == [
        ({"Mood__c": "great, really", "Status": "Completed"},)]


def test_re_delivery_is_a_no_op_and_a_changed_lookup_reloads(db, tmp_path, salesforce):
    activities(tmp_path, [task(1), task(2)], [])
    first = load_file(db, tmp_path, DAY, "crm", "activities")
    again = load_file(db, tmp_path, DAY, "crm", "activities")
    assert (first.status, again.status, again.sha256) == ("loaded", "skipped", first.sha256)
    activities(tmp_path, [task(1), task(2)], [], users=USERS.replace("am@", "new@"))
    changed = load_file(db, tmp_path, DAY, "crm", "activities")
    assert changed.status == "loaded" and "replaced 2 row(s)" in changed.message
    assert query(db, "select distinct owner_email from raw.crm_activities") == [
        ("new@example.com",)]
    assert [r[1] for r in ledger(db)] == ["loaded", "skipped", "loaded"]


def test_a_missing_required_native_column_rejects_the_file_naming_it(db, tmp_path, salesforce):
    write_export(tmp_path, "crm", {
        "Account.csv": ACCOUNT.replace(",LastModifiedDate", "") +
        f"001A,Acme,,SMB,EMEA,t1,005A,{TS},false\n", "User.csv": USERS})
    result = load_file(db, tmp_path, DAY, "crm", "accounts")
    assert result.status == "rejected"
    assert "missing required column(s): LastModifiedDate (for updated_at)" in result.message


def test_the_team_from_the_owners_role_reads_user_role_too(db, tmp_path, salesforce,
                                                          monkeypatch):
    monkeypatch.setenv("CHW_SALESFORCE_TEAM_FIELD", "OwnerId > users.UserRoleId > roles.Name")
    write_export(tmp_path, "crm", {
        "Account.csv": ACCOUNT.replace("Account_Team__c,", "") +
        f"001A,Acme,,Enterprise,EMEA,005A,{TS},{TS},false\n", "User.csv": USERS})
    complete, missing = export_folder_status(tmp_path, "crm", DAY)
    assert not complete and f"crm/{DAY}/UserRole.csv" in missing
    write_export(tmp_path, "crm", {"UserRole.csv": ROLES})
    assert load_file(db, tmp_path, DAY, "crm", "accounts").status == "loaded"
    assert query(db, "select account_team, owner_email, segment from raw.crm_accounts") == [
        ("emea-enterprise", "am@example.com", "enterprise")]


def test_hubspot_local_times_get_the_portal_zone_and_values_are_mapped(db, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setenv("CHW_CRM_FORMAT", "hubspot")
    monkeypatch.setenv("CHW_CRM_TIMEZONE", "Europe/Berlin")
    header = ("Ticket ID,Associated Company IDs,Associated Contact IDs,Priority,Ticket status,"
              "Create date,First agent reply date,Close date,CSAT score,Last Modified Date\n")
    write_export(tmp_path, "crm", {"tickets.csv": header +
        "7,101;102,,Medium,Waiting on contact,2026-11-20 09:30,,,,2026-07-01 09:30:15\n"
        "8,101,,Highest,New,2026-11-20 09:30,,,,2026-11-20 09:30\n"})
    result = load_file(db, tmp_path, DAY, "crm", "support_tickets", threshold=0.9)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (2, 1, 1)
    rows = query(db, "select ticket_id, account_id, priority, status,"
                     " to_char(opened_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
                     " to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
                     " from raw.crm_support_tickets")
    # November is CET (+01:00), July CEST (+02:00); the primary company is the first id
    assert rows == [("7", "101", "normal", "pending", "2026-11-20 08:30:00",
                     "2026-07-01 07:30:15")]
    assert quarantined(db)[0][:2] == ("tickets.csv", 3)


def test_a_declaration_of_ones_own_is_checked_against_the_contract(tmp_path, monkeypatch):
    own = tmp_path / "mine.toml"
    text = (FORMATS_DIR / "salesforce.toml").read_text()
    own.write_text(text.replace('account_name = "Name"', 'account_nam = "Name"'))
    with pytest.raises(DeclarationError, match=r"mine.toml: \[files.'Account.csv'.columns\]"
                                               " account_nam: crm/accounts has no such column"):
        load_format(str(own), "crm")
    own.write_text(text.replace('account_name = "Name"\n', ""))
    monkeypatch.setenv("CHW_CRM_FORMAT", str(own))
    with pytest.raises(LoadError, match="no rule for required column.*account_name"):
        load_file("postgresql://unused", tmp_path, DAY, "crm", "accounts")


def test_hubspot_local_times_around_a_change_of_offset(db, tmp_path, monkeypatch):
    """Berlin leaves summer time on 25 October 2026 at 03:00: that day's times before the
    change are +02:00, after it +01:00 (a block of valid rows: the column path)."""
    monkeypatch.setenv("CHW_CRM_FORMAT", "hubspot")
    monkeypatch.setenv("CHW_CRM_TIMEZONE", "Europe/Berlin")
    header = "Record ID,Associated Company IDs,Response value,Submission date,Response\n"
    times = ["2026-10-24 12:00:00", "2026-10-25 01:30:00", "2026-10-25 12:00:00",
             "2026-10-26 12:00:00"]
    write_export(tmp_path, "crm", {"feedback_submissions.csv": header + "".join(
        f"n{i},101,9,{t},\n" for i, t in enumerate(times))})
    assert load_file(db, tmp_path, DAY, "crm", "nps_responses").rows_loaded == 4
    assert query(db, "select to_char(responded_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI')"
                     " from raw.crm_nps_responses order by response_id") == [
        ("2026-10-24 10:00",), ("2026-10-24 23:30",), ("2026-10-25 11:00",),
        ("2026-10-26 11:00",)]


def test_a_lead_is_no_contact_in_a_block_of_valid_rows(db, tmp_path, salesforce):
    activities(tmp_path, [], [f"00U{i},001A,{who},Meeting,Inbound,{TS},005A,met,{TS}"
                              for i, who in enumerate(["003A", "00QL", ""])])
    assert load_file(db, tmp_path, DAY, "crm", "activities").rows_loaded == 3
    assert query(db, "select activity_id, contact_id from raw.crm_activities order by 1") == [
        ("00U0", "003A"), ("00U1", None), ("00U2", None)]


def test_an_unreadable_lookup_rejects_the_entities_that_use_it(db, tmp_path, salesforce):
    activities(tmp_path, [task(1)], [], users="Id,Email\n005A,am\xe9@example.com\n")
    (tmp_path / "crm" / DAY.isoformat() / "User.csv").write_bytes(
        b"Id,Email\n005A,am\xe9@example.com\n")  # Latin-1, not UTF-8
    result = load_file(db, tmp_path, DAY, "crm", "activities")
    assert result.status == "rejected"
    assert result.message.startswith("User.csv (a lookup) is not UTF-8")


STRIPE_SUBSCRIPTIONS = (
    "id,Customer ID,Customer Email,Plan,Interval,Interval Count,Quantity,Amount,Currency,"
    "Status,Start Date (UTC),Current Period End (UTC),Canceled At (UTC),Seats (metadata)\n")


def test_stripe_snapshot_rows_get_mrr_statuses_and_the_snapshots_instant(
        db, tmp_path, monkeypatch):
    """Stripe: MRR from amount x quantity / interval (thousands separators read), the
    statuses mapped, lower-case currencies, the date of the period end, `${snapshot_at}`
    as the version; a bad interval or status is quarantined naming the native column; a
    metadata column of one's own is drift, kept in _extra."""
    monkeypatch.setenv("CHW_BILLING_FORMAT", "stripe")
    write_export(tmp_path, "billing", {"subscriptions.csv": STRIPE_SUBSCRIPTIONS +
        "sub_1,cus_1,a@x.example,pro,year,1,3,\"1,200.00\",usd,active,"
        "2026-01-05 10:00:00,2027-01-05 10:00:00,,12\n"
        "sub_2,cus_1,a@x.example,pro,month,3,2,90.00,eur,incomplete,"
        "2026-11-20 09:00:00,2026-12-20 09:00:00,,\n"
        "sub_3,cus_2,,pro,fortnight,1,1,10.00,usd,active,2026-11-20 09:00:00,"
        "2026-12-20 09:00:00,,\n"
        "sub_4,cus_2,,pro,month,1,1,10.00,usd,frozen,2026-11-20 09:00:00,"
        "2026-12-20 09:00:00,,\n"})
    result = load_file(db, tmp_path, DAY, "billing", "subscriptions", threshold=0.9)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4, 2, 2)
    assert "Seats (metadata)" in result.message  # drift, named
    assert "Customer Email" not in result.message  # a known Stripe column: kept, no drift
    rows = query(db, "select subscription_id, billing_interval, quantity, mrr::text, currency,"
                     " status, current_term_end::text,"
                     " to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),"
                     " _extra::text from raw.billing_subscriptions order by 1")
    assert rows == [
        ("sub_1", "year", 3, "300.00", "USD", "active", "2027-01-05",
         "2026-11-20 23:59:59.999999",
         '{"Customer Email": "a@x.example", "Seats (metadata)": "12"}'),
        ("sub_2", "month", 2, "60.00", "EUR", "past_due", "2026-12-20",
         "2026-11-20 23:59:59.999999",
         '{"Customer Email": "a@x.example", "Seats (metadata)": null}')]
    bad = quarantined(db)
    assert [(f, line) for f, line, _, _ in bad] == [("subscriptions.csv", 4),
                                                    ("subscriptions.csv", 5)]
    assert bad[0][3].startswith("Interval: 'fortnight' has no mapping in stripe.toml"
                                " [values.interval]")
    assert bad[1][3].startswith("Status: 'frozen' has no mapping in stripe.toml"
                                " [values.subscription_status]")


def test_stripe_customers_find_the_account_under_the_configured_metadata_key(
        db, tmp_path, monkeypatch):
    monkeypatch.setenv("CHW_BILLING_FORMAT", "stripe")
    monkeypatch.setenv("CHW_STRIPE_ACCOUNT_KEY", "sfdc_account")
    write_export(tmp_path, "billing", {
        "customers.csv": "id,Email,Currency,Created (UTC),sfdc_account (metadata)\n"
                         "cus_1,a@x.example,gbp,2026-01-05 10:00:00,001A\n",
        "invoices.csv": "id,Customer,Subscription,Date (UTC),Due Date (UTC),Amount Due,"
                        "Amount Paid,Currency,Status,Paid At (UTC)\n"
                        "in_1,cus_1,sub_1,2026-11-20 10:00:00,,\"2,400.00\",0.00,gbp,open,\n"
                        "in_2,cus_1,,2026-11-20 10:00:00,2026-12-20 10:00:00,5.00,0.00,gbp,"
                        "open,\n"})
    for entity in ("customers", "invoices"):
        assert load_file(db, tmp_path, DAY, "billing", entity).rows_loaded > 0
    assert query(db, "select customer_id, account_id, currency from raw.billing_customers") \
        == [("cus_1", "001A", "GBP")]
    # charged automatically (no due date): due when issued
    assert query(db, "select invoice_id, amount_due::text, due_at = issued_at"
                     " from raw.billing_invoices order by 1") == [
        ("in_1", "2400.00", True), ("in_2", "5.00", False)]


def test_the_fast_split_of_a_block_reads_what_csv_reads() -> None:
    """Lines without quotes are split at commas, the others read by csv: the records are
    csv's, for every kind of line a native export holds."""
    import csv
    import io
    import random

    from customer_health.loading.formats.native import _split_records

    pieces = ["a", "", "12,5", 'say "hi"', "x y", "é", ",", '""', "tail ", "two\nlines",
              'a "quoted"\nbreak', "\n"]
    rnd = random.Random(3)

    def field() -> str:
        value = rnd.choice(pieces)
        quote = any(c in value for c in ',"\n') or rnd.random() < 0.1
        return '"' + value.replace('"', '""') + '"' if quote else value

    for _ in range(2000):
        lines = [",".join(field() for _ in range(rnd.randint(1, 5)))
                 for _ in range(rnd.randint(1, 8))]
        if rnd.random() < 0.1:
            lines.insert(0, 'a"b,c')  # a quote inside an unquoted field
        text = "\n".join(lines) + "\n"
        physical = text.split("\n")[:-1]
        if rnd.random() < 0.05:  # a quote that never closes: csv's error, both ways
            text, physical = text + '"open\n', [*physical, '"open']
        try:
            expected = list(csv.reader(io.StringIO(text, newline="\n"), strict=True))
        except csv.Error:
            with pytest.raises(csv.Error):
                _split_records(text, physical)
            continue
        records, at = _split_records(text, physical)
        assert records == expected, text
        if at is not None:  # each record's first line, as csv counts them
            reader = csv.reader(io.StringIO(text, newline="\n"), strict=True)
            assert list(at) == [0] + [reader.line_num for _ in reader][:-1], text


def test_the_end_of_whole_records_is_where_every_quote_is_closed() -> None:
    import re

    from customer_health.loading.formats.native import whole_records_end

    # the grammar of whole records: quotes balanced at each record's line end
    whole = re.compile(rb'(?:[^"\n]*+(?:"[^"]*+"[^"\n]*+)*+\n)*+')
    lines = [b"a,b\n", b'"x\n', b'y",z\n', b'q,"r""s"\n', b'"open,\n', b"c\n", b'd",e\n',
             b'k"l\n', b"\n", b'"\n']
    rnd = __import__("random").Random(5)
    for _ in range(3000):
        buf = b"".join(rnd.choice(lines) for _ in range(rnd.randint(0, 9)))
        buf += rnd.choice([b"", b"tail", b'"tail'])
        start = rnd.randint(0, len(buf))
        assert whole_records_end(buf, start, len(buf)) == \
            whole.match(buf, start, len(buf)).end(), (buf, start)
