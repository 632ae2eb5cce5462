-- depends: 0008.linked-identities
-- Background jobs that every server process runs, each round by one process only: a process
-- gets a round by moving its job's claimed_at to its own now, when the last claim is at
-- least the job's interval old. Rows appear with the first claim of each job.
CREATE TABLE periodic_jobs (
    name       text PRIMARY KEY CHECK (char_length(name) BETWEEN 1 AND 100),
    claimed_at timestamptz NOT NULL
);
