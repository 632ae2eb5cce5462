-- depends: 0001.users-and-tasks
-- Logged-out tokens, kept in the database so that every server process sees a logout at once.
-- Rows are purged once the token would have expired anyway.

CREATE TABLE revoked_tokens (
    token_key  text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE INDEX revoked_tokens_expires_at_idx ON revoked_tokens (expires_at);
