-- People who use the web dashboard and the client API. No row exists until `nester init`
-- (or `nester user add`) creates one with a password of its own: there is no default account.

CREATE TABLE users (
    user_id       INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'noc', 'support')),
    -- Argon2id PHC string ($argon2id$v=19$m=19456,t=2,p=1$salt$hash); never the password.
    password_hash TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    password_ms   INTEGER NOT NULL,
    disabled_ms   INTEGER
) STRICT;
