DROP TRIGGER tasks_truncate_counts ON tasks;
DROP TRIGGER tasks_count ON tasks;
DROP FUNCTION forget_task_counts();
DROP FUNCTION count_tasks();
DROP TABLE task_counts;
