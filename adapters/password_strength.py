"""How guessable a password is, by zxcvbn (its own lists of common passwords, names, words)."""

import asyncio
from collections.abc import Sequence

from zxcvbn import zxcvbn

from domain.users import MAX_PASSWORD_LENGTH

MIN_SCORE = 2  # of zxcvbn's 0..4: "somewhat guessable", 10^8 guesses and more


class ZxcvbnStrengthMeter:
    def __init__(self, min_score: int = MIN_SCORE) -> None:
        self._min_score = min_score

    async def weakness(self, password: str, user_inputs: Sequence[str]) -> str | None:
        # Long passwords take zxcvbn tens of milliseconds: too long for the event loop.
        result = await asyncio.to_thread(
            zxcvbn, password, user_inputs=list(user_inputs), max_length=MAX_PASSWORD_LENGTH
        )
        if result["score"] >= self._min_score:
            return None
        feedback = result["feedback"]
        advice = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
        return " ".join(part for part in advice if part) or "Choose a longer, less common password."
