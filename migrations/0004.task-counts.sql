-- depends: 0003.login-throttling-and-token-cutoff
-- Per-user task counts, kept by the database in the same transaction as every change to
-- tasks, so that a list's `total` costs one row read however many tasks a user has.

CREATE TABLE task_counts (
    user_id   uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    total     bigint NOT NULL DEFAULT 0,
    completed bigint NOT NULL DEFAULT 0,
    CHECK (0 <= completed AND completed <= total)
);

INSERT INTO task_counts (user_id, total, completed)
SELECT user_id, count(*), count(*) FILTER (WHERE completed)
FROM tasks GROUP BY user_id;

CREATE FUNCTION count_tasks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE task_counts
        SET total = total - 1, completed = completed - OLD.completed::int
        WHERE user_id = OLD.user_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO task_counts AS c (user_id, total, completed)
        VALUES (NEW.user_id, 1, NEW.completed::int)
        ON CONFLICT (user_id) DO UPDATE
        SET total = c.total + 1, completed = c.completed + NEW.completed::int;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_count AFTER INSERT OR DELETE OR UPDATE OF completed, user_id ON tasks
    FOR EACH ROW EXECUTE FUNCTION count_tasks();

CREATE FUNCTION forget_task_counts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM task_counts;
    RETURN NULL;
END;
$$;

-- TRUNCATE fires no row triggers; without this the counts would outlive the tasks.
CREATE TRIGGER tasks_truncate_counts AFTER TRUNCATE ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION forget_task_counts();
