-- The accounts and their todo lists.

CREATE FUNCTION update_updated_at_column() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Strictly forward, even for two updates within one clock tick or a clock stepping back.
    NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at + interval '1 microsecond');
    RETURN NEW;
END;
$$;

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         varchar(254) NOT NULL CHECK (email <> ''),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE tasks (
    id          uuid PRIMARY KEY,
    -- Blank means nothing but spaces, tabs or line breaks (the domain trims all of them).
    title       varchar(200) NOT NULL
                CHECK (char_length(btrim(title, E' \t\n\r\f\x0b')) BETWEEN 1 AND 200),
    description text CHECK (char_length(description) <= 10000),
    completed   boolean NOT NULL DEFAULT false,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Listing, filtering and counting one user's tasks never reads other users' rows.
CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at DESC, id DESC);
CREATE INDEX tasks_user_completed_created_idx
    ON tasks (user_id, completed, created_at DESC, id DESC);

CREATE TRIGGER tasks_updated_at BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
