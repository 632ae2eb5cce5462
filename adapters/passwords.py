"""bcrypt password hashing, off the event loop, without bcrypt's 72-byte truncation."""

import asyncio
import base64
import hashlib

import bcrypt

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


class BcryptHasher:
    def __init__(self, rounds: int = 12) -> None:
        self._rounds = rounds

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self._rounds)
        hashed = await asyncio.to_thread(bcrypt.hashpw, _bcrypt_input(password), salt)
        return hashed.decode()

    async def verify(self, password: str, password_hash: str) -> bool:
        try:
            return await asyncio.to_thread(
                bcrypt.checkpw, _bcrypt_input(password), password_hash.encode()
            )
        except ValueError:  # a malformed stored hash matches no password
            return False
