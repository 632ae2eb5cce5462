-- Back to migration 0004's row trigger, exactly as 0004 created it. The counts are exact when
-- the statement triggers go, and the row trigger keeps them so from there on.
DROP TRIGGER tasks_count_deletes ON tasks;
DROP TRIGGER tasks_count_updates ON tasks;
DROP TRIGGER tasks_count_inserts ON tasks;
DROP FUNCTION count_deleted_tasks();
DROP FUNCTION count_updated_tasks();
DROP FUNCTION count_inserted_tasks();

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
