-- depends: 0002.revoked-tokens
-- Brute-force protection and "log out everywhere", in the database so that every server
-- process and every restart sees the same state.

-- Tokens of the user issued before this moment are refused (logout-all, password change).
ALTER TABLE users ADD COLUMN tokens_valid_after timestamptz;

-- Failed logins per account key (a digest of the normalised email, registered or not).
CREATE TABLE login_failures (
    account_key       text PRIMARY KEY,
    failures          integer NOT NULL CHECK (failures > 0),
    window_started_at timestamptz NOT NULL
);

CREATE INDEX login_failures_window_idx ON login_failures (window_started_at);

-- Login and register attempts per client address, in one-minute windows.
CREATE TABLE auth_attempts (
    client            text NOT NULL,
    window_started_at timestamptz NOT NULL,
    attempts          integer NOT NULL CHECK (attempts > 0),
    PRIMARY KEY (client, window_started_at)
);

CREATE INDEX auth_attempts_window_idx ON auth_attempts (window_started_at);
