"""Records, not lines: a long quoted field never makes the loader invent a row.

An activity's subject may hold a pasted e-mail thread, far longer than the csv
module's default field limit (131,072 characters), whose lines look like CSV rows
themselves. Such a field loads intact up to the loader's record limit; past it the
record is quarantined as one, and reading resumes after it. `rows_read` always
counts records: loaded + quarantined for a loaded file, the records that ended
before the broken one for a file rejected while it was read.
"""

from __future__ import annotations

import csv
import random

import pytest
from loading_helpers import ACT_HEADER, DAY, act, csv_text, ledger, quarantine, query, write_export

from customer_health.loading import load_file
from customer_health.loading.scanner import MAX_RECORD, _record_ends


@pytest.fixture
def db(fresh_database) -> str:
    return fresh_database()


def thread(min_chars: int) -> str:
    """A pasted e-mail thread: prose with quotes and commas, and lines that are valid
    activities rows on their own (what a lost parser would load as rows)."""
    parts, size, k = [], 0, 0
    while size < min_chars:
        for line in (f"> On Mon, Ann wrote (reply {k}):",
                     f'> "Can we move the call", she asked, "to Tuesday?" #{k}',
                     f"inner{k},acc1,,call,outbound,2026-11-20T10:00:00Z,x@example.com,"
                     "pasted,2026-11-20T10:00:00Z",
                     ""):
            parts.append(line)
            size += len(line) + 1
        k += 1
    return "\n".join(parts)


def quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def load(db, tmp_path, rows, threshold=0.9):
    write_export(tmp_path, "crm", {"activities.csv": csv_text(ACT_HEADER, rows)})
    return load_file(db, tmp_path, DAY, "crm", "activities", threshold=threshold)


def invented(db) -> list[tuple]:
    return query(db, "select activity_id, _line_number from raw.crm_activities"
                     " where activity_id like 'inner%%' or activity_id like '>%%'")


def test_a_200000_character_quoted_field_over_many_lines_loads_intact(db, tmp_path):
    note = thread(200_000)
    assert len(note) > 200_000
    rows = [act(1), act(2, subject=quoted(note)), act(3)]
    result = load(db, tmp_path, rows)
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == \
        ("loaded", 3, 3, 0)
    lines_of_note = note.count("\n") + 1
    assert query(db, "select activity_id, subject, _line_number from raw.crm_activities"
                     " order by _line_number") == [
        ("a1", "hello", 2), ("a2", note, 3), ("a3", "hello", 3 + lines_of_note)]
    assert invented(db) == []
    assert quarantine(db) == []


def test_a_record_over_the_limit_is_quarantined_whole_and_the_next_records_load(db, tmp_path):
    note = thread(MAX_RECORD + 300_000)
    rows = [act(1), act(2, subject=quoted(note)), act(3), act(4, subject='"after, ""it"""')]
    result = load(db, tmp_path, rows)
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == \
        ("loaded", 4, 3, 1)
    assert result.rows_read == result.rows_loaded + result.rows_quarantined
    last = 3 + note.count("\n")  # the line where the long record ends
    assert query(db, "select activity_id, subject, _line_number from raw.crm_activities"
                     " order by _line_number") == [
        ("a1", "hello", 2), ("a3", "hello", last + 1), ("a4", 'after, "it"', last + 2)]
    assert invented(db) == []
    (file_name, line, raw_line, reason), = query(
        db, "select file_name, line_number, raw_line, reason from audit.quarantine")
    record = rows[1]
    assert (file_name, line) == ("activities.csv", 3)
    assert reason.startswith(f"the record on lines 3-{last} is {len(record.encode()) + 1:,} "
                             "bytes long, more than the loader's limit of 8 MiB for one record")
    assert "raw_line holds its first" in reason
    assert record.startswith(raw_line) and MAX_RECORD - 1000 < len(raw_line) <= MAX_RECORD
    assert ledger(db)[0][5].startswith("1 row(s) quarantined (25.00%; first: line 3: the record")


# tails past csv's default field limit (131,072 characters) and past the record limit
@pytest.mark.parametrize("tail_rows", [2_000, 100_000])
def test_an_unclosed_quote_rejects_the_file_and_rows_read_counts_records(db, tmp_path, tail_rows):
    rows = [act(1), act(2, subject='"two\nlines"'), act(3, subject='"never closed'),
            *(act(i) for i in range(4, 4 + tail_rows))]
    result = load(db, tmp_path, rows)
    message = ("a quoted field opened on line 5 is never closed before the end of the file "
               "(a broken quote, or a truncated file)")
    assert (result.status, result.message) == ("rejected", message)
    # the two records that ended before the one whose quote never closes
    assert ledger(db) == [("activities", "rejected", 2, 0, 0, message)]
    assert query(db, "select count(*) from raw.crm_activities") == [(0,)]
    assert quarantine(db) == []


@pytest.mark.parametrize("tail_rows", [2_000, 100_000])
def test_a_quote_closed_far_away_is_one_record_and_reading_resumes_after_it(db, tmp_path,
                                                                           tail_rows):
    """A stray quote swallows the lines up to the next quote: one bad record, not rows."""
    rows = [act(1), act(2, subject='"stray'), *(act(i) for i in range(4, 4 + tail_rows)),
            act(900_000, subject='"closes" here'), act(900_001)]
    result = load(db, tmp_path, rows)
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == \
        ("loaded", 3, 2, 1)
    closing = 4 + tail_rows  # the line of the next quote, where csv finds the record broken
    assert query(db, "select activity_id, _line_number from raw.crm_activities"
                     " order by 2") == [("a1", 2), ("a900001", closing + 1)]
    ((line, reason),) = query(db, "select line_number, reason from audit.quarantine")
    assert line == 3
    if tail_rows > 2_000:
        assert reason.startswith(f"the record on lines 3-{closing} is ")
    else:
        assert reason.startswith("not valid CSV: a closing quote must be followed by a comma")


def csv_records(lines: list[str]) -> list[int]:
    """Where the csv module (strict, reading on after an error, as the loader does) ends
    each record: the index of the record's last line."""
    taken: list[int] = []

    def feed():
        for i, line in enumerate(lines):
            taken.append(i)
            yield line

    reader, ends = csv.reader(feed(), strict=True), []
    while True:
        try:
            next(reader)
        except StopIteration:
            return ends
        except csv.Error as exc:
            if "unexpected end" in str(exc):
                return ends
        ends.append(taken[-1])


def scanner_records(lines: list[str]) -> list[int]:
    ends, quoted = [], False
    for i, line in enumerate(lines):
        ended, quoted = _record_ends(line.encode(), quoted)
        if ended:
            ends.append(i)
    return ends


def test_record_ends_follow_csv_quoting_exactly():
    """The scanner's own reading of quotes (used to skip a record past the limit) ends
    every record where the csv module does, on random lines of quotes and commas."""
    rnd = random.Random(13)
    for _ in range(3000):
        lines = ["".join(rnd.choice('ab,"""  ') for _ in range(rnd.randint(0, 12))) + "\n"
                 for _ in range(rnd.randint(1, 6))]
        assert scanner_records(lines) == csv_records(lines), lines
