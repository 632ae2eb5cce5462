"""bcrypt password hashing, off the event loop, without bcrypt's 72-byte truncation."""

import asyncio
import base64
import hashlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

from application.errors import ServerBusy

_R = TypeVar("_R")

_BCRYPT_MAX_INPUT = 72
_PREHASHED = b"sha256$"


def _bcrypt_input(password: str) -> bytes:
    raw = password.encode()
    # A password that looks like a pre-hashed one is pre-hashed too, or the digest of a long
    # password would itself log in to that account.
    if len(raw) <= _BCRYPT_MAX_INPUT and not raw.startswith(_PREHASHED):
        return raw
    # Longer passwords are pre-hashed so that every byte counts (bcrypt itself would ignore the
    # rest, and bcrypt 5 refuses them). base64 keeps NUL bytes out of bcrypt's input.
    return _PREHASHED + base64.b64encode(hashlib.sha256(raw).digest())


HASHING_NICENESS = 10
"""How much lower than the rest of the process the hashing threads run (Linux nice levels):
when the CPU is contended, the event loop and the database get about ten times their share."""


def _run_behind_requests() -> None:
    # On Linux a thread has a nice value of its own; elsewhere the threads keep the process's.
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + HASHING_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))
    except OSError as error:  # a sandbox that forbids it: hash at the process's priority
        logging.getLogger(__name__).warning("bcrypt threads keep their priority: %s", error)


class BcryptHasher:
    """At most `concurrency` hashes run at once (one per core by default), each in a worker
    thread of lower CPU priority than the requests; up to `queue` more wait their turn, and
    beyond that callers get ServerBusy at once. A storm of logins then uses the CPU the other
    endpoints leave idle, and never starves them."""

    def __init__(self, rounds: int = 12, *, concurrency: int | None = None, queue: int = 16):
        self._rounds = rounds
        self._concurrency = concurrency or os.cpu_count() or 1
        self._threads = ThreadPoolExecutor(
            self._concurrency, thread_name_prefix="bcrypt", initializer=_run_behind_requests
        )
        self._running = asyncio.Semaphore(self._concurrency)
        self._capacity = self._concurrency + queue
        self._admitted = 0

    @property
    def waiting(self) -> int:
        """Hashes admitted but not yet running."""
        return max(0, self._admitted - self._concurrency)

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self._rounds)
        hashed = await self._run(bcrypt.hashpw, _bcrypt_input(password), salt)
        return hashed.decode()

    async def verify(self, password: str, password_hash: str) -> bool:
        try:
            return await self._run(bcrypt.checkpw, _bcrypt_input(password), password_hash.encode())
        except ValueError:  # a malformed stored hash matches no password
            return False

    async def _run(self, work: Callable[[bytes, bytes], _R], password: bytes, salt: bytes) -> _R:
        if self._admitted >= self._capacity:
            raise ServerBusy(retry_after_seconds=1)
        self._admitted += 1
        try:
            async with self._running:
                hashing = asyncio.get_running_loop().run_in_executor(
                    self._threads, work, password, salt
                )
                try:
                    return await asyncio.shield(hashing)
                except asyncio.CancelledError:
                    # A thread cannot be stopped: the slot stays taken until it is done.
                    await asyncio.wait([hashing])
                    raise
        finally:
            self._admitted -= 1
