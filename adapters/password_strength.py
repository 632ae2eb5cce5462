"""How guessable a password is, by zxcvbn (its own lists of common passwords, names, words)."""

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from zxcvbn import zxcvbn

from domain.users import MAX_PASSWORD_LENGTH

MIN_SCORE = 2  # of zxcvbn's 0..4: "somewhat guessable", 10^8 guesses and more


class ZxcvbnStrengthMeter:
    def __init__(self, min_score: int = MIN_SCORE) -> None:
        self._min_score = min_score

    async def weakness(self, password: str, user_inputs: Sequence[str]) -> str | None:
        # Long passwords take zxcvbn tens of milliseconds: too long for the event loop.
        result = await asyncio.to_thread(_measure, password, list(user_inputs))
        if result["score"] >= self._min_score:
            return None
        feedback = result["feedback"]
        advice = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
        return " ".join(part for part in advice if part) or "Choose a longer, less common password."


# zxcvbn keeps the user inputs of the running check in a module-wide dictionary, so two
# checks at once in two threads could each see the other's email.
_one_check_at_a_time = threading.Lock()


def _measure(password: str, user_inputs: list[str]) -> dict[str, Any]:
    with _one_check_at_a_time:
        result: dict[str, Any] = zxcvbn(
            password, user_inputs=user_inputs, max_length=MAX_PASSWORD_LENGTH
        )
        return result
