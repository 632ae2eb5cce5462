"""The real clock and id generator."""

import uuid
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RandomIds:
    def new_id(self) -> uuid.UUID:
        return uuid.uuid4()
