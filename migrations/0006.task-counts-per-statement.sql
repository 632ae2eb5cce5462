-- depends: 0005.idempotency-keys
-- task_counts kept once per statement instead of once per row (migration 0004 did it per row).
-- A statement that inserts N tasks of a user rewrote that user's counter row N times, each
-- time leaving a dead version of it that the next one had to step over: 20 000 tasks in one
-- INSERT took about 3 s, growing quadratically. And as the application sets `completed` on
-- every update, a title-only update rewrote the counter row too. Here each statement adds up
-- its changes per user from its transition tables and writes each counter row at most once,
-- and not at all when the user's counts do not change.
--
-- Every trigger locks counter rows in user_id order, so that two concurrent statements
-- changing tasks of the same users take those locks in the same order and cannot deadlock on
-- them. One transaction (yoyo's): dropping the old trigger locks tasks until the new ones are
-- in place, so no write to tasks is counted by neither or by both.

DROP TRIGGER tasks_count ON tasks;
DROP FUNCTION count_tasks();

CREATE FUNCTION count_inserted_tasks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The first tasks of a user create their row; ON CONFLICT, for when another transaction
    -- creates it at the same time.
    INSERT INTO task_counts AS c (user_id, total, completed)
    SELECT user_id, count(*), count(*) FILTER (WHERE completed)
    FROM inserted_tasks GROUP BY user_id ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE
    SET total = c.total + EXCLUDED.total, completed = c.completed + EXCLUDED.completed;
    RETURN NULL;
END;
$$;

CREATE FUNCTION count_deleted_tasks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- An UPDATE ... FROM locks rows in whatever order its plan reads them; lock them first,
    -- in user_id order. (A user's row may be gone already when the user's deletion cascades
    -- to the tasks: there is nothing left to count then.)
    PERFORM FROM task_counts
    WHERE user_id IN (SELECT user_id FROM deleted_tasks)
    ORDER BY user_id FOR NO KEY UPDATE;
    UPDATE task_counts AS c
    SET total = c.total - d.total, completed = c.completed - d.completed
    FROM (SELECT user_id, count(*) AS total, count(*) FILTER (WHERE completed) AS completed
          FROM deleted_tasks GROUP BY user_id) AS d
    WHERE c.user_id = d.user_id;
    RETURN NULL;
END;
$$;

CREATE FUNCTION count_updated_tasks() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    delta record;
BEGIN
    -- What the statement changed per user: its rows as they are now counted in, as they were
    -- counted out. Rows that kept their user and completed cancel out (so does a changed id,
    -- which a join on id would miss), and users whose counts do not change are left out.
    FOR delta IN
        SELECT user_id, sum(total) AS total, sum(completed) AS completed
        FROM (SELECT user_id, 1 AS total, completed::int AS completed FROM new_tasks
              UNION ALL
              SELECT user_id, -1, -completed::int FROM old_tasks) AS changes
        GROUP BY user_id
        HAVING sum(total) <> 0 OR sum(completed) <> 0
        ORDER BY user_id
    LOOP
        -- One user at a time, so that rows are locked in user_id order even when some must
        -- be created (a task moved to a user who has no row), which one INSERT ... ON
        -- CONFLICT cannot do for all of them: it would check a decrement as a new row.
        UPDATE task_counts
        SET total = total + delta.total, completed = completed + delta.completed
        WHERE user_id = delta.user_id;
        IF NOT FOUND THEN
            INSERT INTO task_counts AS c (user_id, total, completed)
            VALUES (delta.user_id, delta.total, delta.completed)
            ON CONFLICT (user_id) DO UPDATE
            SET total = c.total + EXCLUDED.total, completed = c.completed + EXCLUDED.completed;
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$;

-- Transition tables allow one event per trigger and no column list, hence three triggers,
-- and the update trigger fires for every UPDATE (it writes nothing when no count changes).
CREATE TRIGGER tasks_count_inserts AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS inserted_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION count_inserted_tasks();

CREATE TRIGGER tasks_count_updates AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_tasks NEW TABLE AS new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION count_updated_tasks();

CREATE TRIGGER tasks_count_deletes AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS deleted_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION count_deleted_tasks();
