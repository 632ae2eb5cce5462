"""Connections over TLS to a database endpoint that accepts nothing else, with a certificate from an
authority the test session made: `sslmode=require` and `verify-full` with `sslrootcert` work for
the command line and the server; the wrong root certificate fails in one clear line."""

import asyncio
from pathlib import Path

import httpx
import psycopg
import pytest

from adapters.postgres.pool import create_pool, open_pool
from application.errors import StorageUnavailable
from tests.cli.support import assert_ok, assert_one_line_failure, make_env, run
from tests.deployment.conftest import Tls
from tests.deployment.support import uses_tls
from tests.faults.support import bearer, free_port, service_env, sign_up, start_server

STARTUP_SECONDS = 30


def test_the_endpoint_refuses_connections_without_tls(tls: Tls) -> None:
    # What makes the tests below prove something: nothing unencrypted gets through.
    with pytest.raises(psycopg.OperationalError, match="SSL required"):
        psycopg.connect(tls.url(sslmode="disable"), connect_timeout=10).close()


def test_sslmode_require_connects_encrypted(tls: Tls) -> None:
    assert uses_tls(tls.url(sslmode="require"))


def test_verify_full_with_the_right_root_certificate_connects_encrypted(tls: Tls) -> None:
    assert uses_tls(tls.url(sslmode="verify-full", sslrootcert=str(tls.root_certificate)))


def test_migrate_and_the_account_commands_work_over_verify_full(tmp_path: Path, tls: Tls) -> None:
    url = tls.url(sslmode="verify-full", sslrootcert=str(tls.root_certificate))
    env = make_env(tmp_path, url)
    assert_ok(run(["migrate"], env=env, cwd=tmp_path))
    listed = assert_ok(run(["migrations"], env=env, cwd=tmp_path))
    assert all(line.startswith("applied\t") for line in listed.stdout_lines), listed.stdout
    created = assert_ok(
        run(
            ["users", "create", "tls-cli@example.com"],
            env=env,
            cwd=tmp_path,
            stdin="correct horse battery",
        )
    )
    assert "tls-cli@example.com" in created.stdout


def test_serve_works_over_verify_full(tmp_path: Path, tls: Tls) -> None:
    url = tls.url(sslmode="verify-full", sslrootcert=str(tls.root_certificate))
    server = start_server(tmp_path, service_env(tmp_path, url))
    try:
        server.wait_healthy(timeout=STARTUP_SECONDS)
        token = sign_up(server.base_url, "tls-serve@example.com")
        created = httpx.post(
            f"{server.base_url}/api/tasks", json={"title": "over TLS"}, headers=bearer(token)
        )
        assert created.status_code == 201, created.text
        code, _ = server.terminate()
    finally:
        server.kill()
    assert code == 0, server.output()


@pytest.mark.parametrize("command", [["migrate"], ["users", "delete", "nobody@example.com"]])
def test_the_wrong_root_certificate_fails_in_one_line_naming_the_certificate(
    tmp_path: Path, tls: Tls, command: list[str]
) -> None:
    url = tls.url(sslmode="verify-full", sslrootcert=str(tls.wrong_root_certificate))
    failed = run(command, env=make_env(tmp_path, url), cwd=tmp_path)
    assert_one_line_failure(failed, "cannot reach the database", "certificate verify failed")


def test_serve_with_the_wrong_root_certificate_fails_in_one_line(tmp_path: Path, tls: Tls) -> None:
    url = tls.url(sslmode="verify-full", sslrootcert=str(tls.wrong_root_certificate))
    failed = run(["serve", "--port", str(free_port())], env=make_env(tmp_path, url), cwd=tmp_path)
    assert_one_line_failure(failed, "cannot reach the database", "certificate verify failed")


def test_a_missing_root_certificate_file_fails_in_one_line_naming_it(
    tmp_path: Path, tls: Tls
) -> None:
    missing = tmp_path / "nowhere" / "root.crt"
    url = tls.url(sslmode="verify-full", sslrootcert=str(missing))
    failed = run(["migrate"], env=make_env(tmp_path, url), cwd=tmp_path)
    assert_one_line_failure(failed, "cannot reach the database", str(missing))


def test_a_pool_that_cannot_connect_says_why(tls: Tls) -> None:
    url = tls.url(sslmode="verify-full", sslrootcert=str(tls.wrong_root_certificate))

    async def open_it() -> None:
        await open_pool(create_pool(url, min_size=1, max_size=1), wait=True, timeout=1)

    with pytest.raises(StorageUnavailable) as raised:
        asyncio.run(open_it())
    assert "certificate verify failed" in str(raised.value.__cause__)
