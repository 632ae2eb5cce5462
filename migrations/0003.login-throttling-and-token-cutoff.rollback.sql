DROP TABLE auth_attempts;
DROP TABLE login_failures;
ALTER TABLE users DROP COLUMN tokens_valid_after;
