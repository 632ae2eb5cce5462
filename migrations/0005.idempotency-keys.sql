-- depends: 0004.task-counts
-- Idempotency-Key of POST /api/tasks: a retry with the same key gets the task its first
-- request created, from any server process, for 24 hours.

CREATE TABLE idempotency_keys (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    fingerprint text NOT NULL,
    task        jsonb,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
