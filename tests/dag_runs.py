"""Helpers for tests that run the nightly DAG end to end through `chw run` (dag.test())."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg

MARTS = ("customer_health", "customer_inactivity", "revenue_movements", "revenue_retention",
         "customer_lifetime_value", "nps_monthly", "account_team_summary")


def chw(args: list[str], home: Path, url: str, **extra: str) -> subprocess.CompletedProcess:
    """Run the CLI in a child process with its own CHW_HOME and Airflow home."""
    env = {**os.environ, "CHW_HOME": str(home), "CHW_WAREHOUSE_URL": url,
           "CHW_TASK_RETRIES": "0", **extra}
    for key in [k for k in env if k.startswith("AIRFLOW") and k not in extra]:
        del env[key]  # each chw run configures its own Airflow home under CHW_HOME
    return subprocess.run([sys.executable, "-m", "customer_health.cli", *args],
                          env=env, capture_output=True, text=True, timeout=900)


def marts_snapshot(url: str, schema: str = "marts") -> dict[str, list[tuple]]:
    """Every row of every mart, sorted: two snapshots are equal when the content is."""
    snapshot = {}
    with psycopg.connect(url) as conn:
        for table in MARTS:
            rows = conn.execute(f"select * from {schema}.{table}").fetchall()  # noqa: S608
            snapshot[table] = sorted(rows, key=repr)
    return snapshot


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` (symlinks resolved), by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def rewrite_export_file(folder: Path, name: str, change) -> None:
    """Apply `change(row: dict) -> dict` to the first data row of `folder/name` and keep
    the folder's manifest consistent (rows and sha256), as an exporter would."""
    path = folder / name
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    rows[0] = change(rows[0])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(out.getvalue().encode("utf-8"))
    manifest_path = folder / "_manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        entry = manifest["files"][name]
        entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest_path.write_text(json.dumps(manifest, indent=2))


def append_export_rows(folder: Path, name: str, rows: list[dict[str, str]]) -> None:
    """Add rows to `folder/name` and keep the folder's manifest consistent (rows and
    sha256), as an exporter would."""
    path = folder / name
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, existing = reader.fieldnames, list(reader)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows([*existing, *rows])
    path.write_bytes(out.getvalue().encode("utf-8"))
    manifest_path = folder / "_manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        entry = manifest["files"][name]
        entry["rows"] = len(existing) + len(rows)
        entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest_path.write_text(json.dumps(manifest, indent=2))


class WebhookReceiver:
    """A local HTTP endpoint that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/chw"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
