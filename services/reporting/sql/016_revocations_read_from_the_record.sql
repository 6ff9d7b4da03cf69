-- Whose access is revoked is read by the gateway from the record itself, which only the data management service
-- writes: a table any projection could delete from was a way to let a revoked user in again.
DROP TABLE revoked_users;
