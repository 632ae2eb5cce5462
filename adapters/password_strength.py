"""How guessable a password is, by zxcvbn (its own lists of common passwords, names, words)."""

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from zxcvbn import zxcvbn

from application.errors import ServerBusy
from domain.users import MAX_PASSWORD_LENGTH

MIN_SCORE = 2  # of zxcvbn's 0..4: "somewhat guessable", 10^8 guesses and more


class ZxcvbnStrengthMeter:
    """One check runs at a time, in a worker thread (a long password takes zxcvbn tens of
    milliseconds: too long for the event loop, and zxcvbn cannot run two checks at once, see
    _measure); up to `queue` more wait their turn, and beyond that callers get ServerBusy at
    once. A storm of registrations then costs a bounded wait, never a queue that grows with
    it, as BcryptHasher bounds the hashing that follows."""

    def __init__(self, min_score: int = MIN_SCORE, *, queue: int = 16) -> None:
        self._min_score = min_score
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="zxcvbn")
        self._running = asyncio.Semaphore(1)
        self._capacity = 1 + queue
        self._admitted = 0

    @property
    def waiting(self) -> int:
        """Checks admitted but not yet running."""
        return max(0, self._admitted - 1)

    async def weakness(self, password: str, user_inputs: Sequence[str]) -> str | None:
        result = await self._run(password, list(user_inputs))
        if result["score"] >= self._min_score:
            return None
        feedback = result["feedback"]
        advice = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
        return " ".join(part for part in advice if part) or "Choose a longer, less common password."

    async def _run(self, password: str, user_inputs: list[str]) -> dict[str, Any]:
        if self._admitted >= self._capacity:
            raise ServerBusy(retry_after_seconds=1)
        self._admitted += 1
        try:
            async with self._running:
                measuring = asyncio.get_running_loop().run_in_executor(
                    self._thread, _measure, password, user_inputs
                )
                try:
                    return await asyncio.shield(measuring)
                except asyncio.CancelledError:
                    # A thread cannot be stopped: the turn stays taken until it is done.
                    await asyncio.wait([measuring])
                    raise
        finally:
            self._admitted -= 1


# zxcvbn keeps the user inputs of the running check in a module-wide dictionary, so two
# checks at once in two threads could each see the other's email. Process-wide, not per
# meter: every meter's checks go through the same module.
_one_check_at_a_time = threading.Lock()


def _measure(password: str, user_inputs: list[str]) -> dict[str, Any]:
    with _one_check_at_a_time:
        result: dict[str, Any] = zxcvbn(
            password, user_inputs=user_inputs, max_length=MAX_PASSWORD_LENGTH
        )
        return result
