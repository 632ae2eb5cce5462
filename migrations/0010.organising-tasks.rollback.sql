-- Priorities, dues, tags and time zones go; the tasks themselves stay.
DROP TABLE tags;
DROP TRIGGER tasks_title_key ON tasks;
DROP FUNCTION keep_title_key();
DROP INDEX tasks_user_due_idx, tasks_user_priority_first_idx, tasks_user_open_due_idx,
    tasks_user_tags_idx, tasks_user_search_idx;
ALTER TABLE tasks
    DROP CONSTRAINT tasks_due_whole,
    DROP COLUMN priority,
    DROP COLUMN due_date,
    DROP COLUMN due_time,
    DROP COLUMN due_timezone,
    DROP COLUMN due_moment,
    DROP COLUMN completed_at,
    DROP COLUMN tag_keys,
    DROP COLUMN title_key;
ALTER TABLE users DROP COLUMN timezone;
-- The extensions go too, so that the schema is as before; without CASCADE, a drop that
-- something else still needs fails (and the rollback with it) rather than take that along.
DROP EXTENSION btree_gin;
DROP EXTENSION pg_trgm;
