DROP TABLE tasks;
DROP TABLE users;
DROP FUNCTION update_updated_at_column();
