-- Accounts without a password cannot exist before this migration: they are deleted, with
-- their tasks (their people sign in through Better Auth and get new accounts if it is applied
-- again).
DROP TABLE linked_identities;
DELETE FROM users WHERE password_hash IS NULL;
ALTER TABLE users ALTER COLUMN password_hash SET NOT NULL;
