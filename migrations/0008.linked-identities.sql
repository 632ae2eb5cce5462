-- depends: 0007.token-generations
-- People who sign in through Better Auth: each identity (the issuer and its user id, a string
-- that is not one of todo-api's UUIDs) is linked to one local account, which keeps its UUID, so
-- tasks and everything else stay as they are. The primary key is what keeps concurrent first
-- requests of one identity from linking it twice.
CREATE TABLE linked_identities (
    issuer    text NOT NULL,
    subject   text NOT NULL,
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    linked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);

CREATE INDEX linked_identities_user_idx ON linked_identities (user_id);

-- An account created by a Better Auth sign-in has no password.
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
