-- depends: 0006.task-counts-per-statement
-- A logout-all or password change advances the user's token generation, and todo-api's own
-- tokens carry the generation they were issued in: a token issued before the cut-off is
-- refused however close in time it came (token times alone are whole seconds, and two events
-- may share even a microsecond).
ALTER TABLE users ADD COLUMN token_generation bigint NOT NULL DEFAULT 0
    CHECK (token_generation >= 0);
