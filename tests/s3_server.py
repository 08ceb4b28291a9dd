"""An S3-compatible server on 127.0.0.1 for the tests: moto in server mode, a process of
its own, reached by s3fs/boto3 through the standard AWS_* environment variables."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from processes import stop_groups


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    env: dict[str, str]

    def fs(self):
        """An s3fs file system on this server (no cache between calls)."""
        import s3fs

        return s3fs.S3FileSystem(
            key=self.env["AWS_ACCESS_KEY_ID"], secret=self.env["AWS_SECRET_ACCESS_KEY"],
            endpoint_url=self.endpoint, skip_instance_cache=True, use_listings_cache=False,
        )

    def make_bucket(self, name: str) -> None:
        self.fs().mkdir(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def s3_server(log_dir: Path) -> Iterator[S3Server]:
    """Start moto's server on a free port; yield its endpoint and the environment that
    points s3fs, boto3 and Airflow's Amazon provider at it; stop it after."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        # botocore (so s3fs, boto3 and the Amazon provider) reads the S3 endpoint here.
        "AWS_ENDPOINT_URL_S3": endpoint,
    }
    server = Path(sys.executable).with_name("moto_server")
    log = open(log_dir / "moto.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **env}, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: see {log.name}") from None
                time.sleep(0.2)
        yield S3Server(endpoint, env)
    finally:
        stop_groups([proc], grace=10)
        log.close()
