-- depends: 0009.periodic-jobs
-- Organising tasks: the user's time zone; a task's priority, due, tags and completion time;
-- and the indexes that keep every list flat as one user's tasks grow. pg_trgm and btree_gin
-- are trusted extensions: the database's owner may create them (Neon, the embedded server).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

ALTER TABLE users ADD COLUMN timezone text NOT NULL DEFAULT 'UTC'
    CHECK (timezone <> '' AND char_length(timezone) <= 64);

-- Every column has a default, so that a process of the previous version, which does not know
-- them, still inserts and updates tasks during a rolling upgrade.
ALTER TABLE tasks
    -- none 0 < low 1 < medium 2 < high 3: the order of sort=priority.
    ADD COLUMN priority smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 3),
    ADD COLUMN due_date date,
    ADD COLUMN due_time time,
    ADD COLUMN due_timezone text,
    -- Where the due sorts (its instant, or the midnight ending an all-day date), computed by
    -- the service from the due and its zone on every write.
    ADD COLUMN due_moment timestamptz,
    ADD COLUMN completed_at timestamptz,
    -- The tags by their key (the casefolded name); their spelling is in tags.
    ADD COLUMN tag_keys text[] NOT NULL DEFAULT '{}',
    -- How titles sort: the casefolded title, compared code point by code point.
    ADD COLUMN title_key text COLLATE "C",
    ADD CONSTRAINT tasks_due_whole CHECK (
        (due_date IS NULL) = (due_timezone IS NULL)
        AND (due_date IS NULL) = (due_moment IS NULL)
        AND (due_time IS NULL OR due_date IS NOT NULL)
    );

UPDATE tasks SET title_key = lower(title),
                 completed_at = CASE WHEN completed THEN updated_at END;

-- A writer that does not send the title's key (a process of the previous version) gets
-- lower(title), close to the casefold the service computes.
CREATE FUNCTION keep_title_key() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.title_key IS NULL
       OR (TG_OP = 'UPDATE' AND NEW.title IS DISTINCT FROM OLD.title
           AND NEW.title_key IS NOT DISTINCT FROM OLD.title_key) THEN
        NEW.title_key := lower(NEW.title);
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER tasks_title_key BEFORE INSERT OR UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION keep_title_key();

ALTER TABLE tasks ALTER COLUMN title_key SET NOT NULL;

-- A user's vocabulary of tags: one spelling per key, the first the user wrote.
CREATE TABLE tags (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key     text COLLATE "C" NOT NULL,
    name    text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 40),
    PRIMARY KEY (user_id, key)
);

-- The sorts a list is most often read by keep an index each, ending in the ties' order
-- (created_at, id, newest first), so that their page is read from the right place however
-- many tasks the user has. The other sorts (oldest, by update, latest due, lowest priority,
-- title) read the matching tasks and keep the top of them: each index costs every write, and
-- one on updated_at would cost every update its in-place (HOT) write.
CREATE INDEX tasks_user_due_idx
    ON tasks (user_id, due_moment NULLS LAST, created_at DESC, id DESC);
CREATE INDEX tasks_user_priority_first_idx
    ON tasks (user_id, priority DESC, created_at DESC, id DESC);
-- Overdue: open tasks by when they fall due.
CREATE INDEX tasks_user_open_due_idx ON tasks (user_id, due_moment) WHERE NOT completed;
-- tag=...: the tasks carrying every tag given; q=...: every word a substring (trigrams).
CREATE INDEX tasks_user_tags_idx ON tasks USING gin (user_id, tag_keys);
CREATE INDEX tasks_user_search_idx
    ON tasks USING gin (user_id, (title || E'\n' || coalesce(description, '')) gin_trgm_ops);
