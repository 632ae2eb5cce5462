"""Real Better Auth servers for the interop tests: the Node fixture in server/ (better-auth pinned
in package.json and package-lock.json), installed with `npm ci` once per test session and
started on free ports, each with keys of its own.

Without node and npm (a laptop that has not run .ci/run) these tests are skipped, saying why;
with REQUIRE_TEST_NEIGHBOURS=1 (as .ci/run sets it) they fail instead, so CI never skips them.
"""

import json
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cli.support import free_port

SERVER_DIR = Path(__file__).parent / "server"
PASSWORD = "correct horse battery"


def _node_or_skip() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node
    reason = "Better Auth interop tests need node and npm (.ci/run installs them)"
    if os.environ.get("REQUIRE_TEST_NEIGHBOURS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _installed_version() -> str | None:
    manifest = SERVER_DIR / "node_modules" / "better-auth" / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.is_file() else None


@pytest.fixture(scope="session")
def node() -> str:
    """node, with the fixture's exact dependencies installed (npm ci, when they are not)."""
    node = _node_or_skip()
    npm = shutil.which("npm") or "npm"
    pinned = json.loads((SERVER_DIR / "package.json").read_text())["dependencies"]["better-auth"]
    if _installed_version() != pinned:
        subprocess.run(  # noqa: S603 - npm, fixed arguments
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=SERVER_DIR,
            check=True,
            timeout=300,
        )
    return node


@dataclass
class BetterAuthServer:
    """One running Better Auth, and a browser-like client of it (cookies kept per user)."""

    url: str
    process: subprocess.Popen[bytes]

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/api/auth/jwks"

    def sign_up(self, email: str, password: str = PASSWORD) -> httpx.Client:
        """A new Better Auth user, signed in: the returned client holds its session cookie."""
        session = httpx.Client(base_url=self.url, timeout=10)
        response = session.post(
            "/api/auth/sign-up/email",
            json={"email": email, "password": password, "name": email.split("@")[0]},
        )
        assert response.status_code == 200, response.text
        return session

    def token(self, session: httpx.Client) -> str:
        """What a frontend's `authClient.token()` gets: GET /api/auth/token."""
        response = session.get("/api/auth/token")
        assert response.status_code == 200, response.text
        token = response.json()["token"]
        assert isinstance(token, str)
        return token

    def verify_email(self, email: str) -> None:
        """As if the person had clicked the link of Better Auth's verification email."""
        response = httpx.post(f"{self.url}/test/verify-email", json={"email": email}, timeout=10)
        assert response.status_code == 204, response.text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


StartBetterAuth = Callable[..., BetterAuthServer]


@pytest.fixture(scope="session")
def start_better_auth(node: str) -> Iterator[StartBetterAuth]:
    """Starts a Better Auth server: `start_better_auth(alg="EdDSA", rotation_seconds=0)`.
    Every server started is stopped when the session ends."""
    started: list[BetterAuthServer] = []

    def start(alg: str = "EdDSA", rotation_seconds: int = 0) -> BetterAuthServer:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", str(SERVER_DIR)),
            "PORT": str(port),
            "BETTER_AUTH_URL": url,
            "BETTER_AUTH_SECRET": secrets.token_urlsafe(32),
            "JWT_ALG": alg,
            "JWT_ROTATION_SECONDS": str(rotation_seconds),
        }
        process = subprocess.Popen(  # noqa: S603 - node and the fixture's own server
            [node, "server.mjs"],
            cwd=SERVER_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        server = BetterAuthServer(url=url, process=process)
        started.append(server)
        assert process.stdout is not None
        output = []
        for raw in process.stdout:  # until "listening on ...", or the process ends
            output.append(raw.decode(errors="replace"))
            if output[-1].startswith("listening on"):
                break
        else:
            server.stop()
            pytest.fail("Better Auth did not start:\n" + "".join(output))
        # Whatever it logs later is read, so that a full pipe never stalls it.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def better_auth(start_better_auth: StartBetterAuth) -> BetterAuthServer:
    """The Better Auth of most tests: EdDSA keys, as Better Auth makes them by default."""
    return start_better_auth()
