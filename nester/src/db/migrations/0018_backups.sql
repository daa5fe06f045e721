-- Backups pushed to the backup server, and what their last verification found.
CREATE TABLE backups (
    name          TEXT PRIMARY KEY,
    bytes         INTEGER NOT NULL,
    pushed_ms     INTEGER NOT NULL,
    verified_ms   INTEGER,
    -- The last verification's failure; NULL when it held.
    verify_error  TEXT
) STRICT;
