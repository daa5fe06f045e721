-- Signing in: TOTP second factor, recovery codes, sessions, API tokens and the record of
-- every sign-in attempt. Secrets handed to people (session cookies, API tokens, recovery
-- codes) are stored as their SHA-256 only.

-- The confirmed TOTP secret (RFC 6238, 20 random bytes) and the last time step accepted,
-- so a code is good once.
ALTER TABLE users ADD COLUMN totp_secret BLOB;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;

CREATE TABLE recovery_codes (
    user_id   INTEGER NOT NULL REFERENCES users (user_id),
    code_hash BLOB NOT NULL,
    used_ms   INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

CREATE TABLE sessions (
    session_id   INTEGER PRIMARY KEY,
    token_hash   BLOB NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users (user_id),
    -- 'mfa': password given, TOTP code awaited; 'mfa_setup': an admin who must set up TOTP
    -- first; 'full': signed in.
    stage        TEXT NOT NULL CHECK (stage IN ('mfa', 'mfa_setup', 'full')),
    -- Sent back in every form of this session.
    csrf_token   TEXT NOT NULL,
    -- A TOTP secret shown on the setup page and not yet confirmed with a code.
    pending_totp BLOB,
    created_ms   INTEGER NOT NULL,
    seen_ms      INTEGER NOT NULL,
    ip           TEXT NOT NULL,
    user_agent   TEXT NOT NULL
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE api_tokens (
    token_id     INTEGER PRIMARY KEY,
    token_hash   BLOB NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users (user_id),
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'read-write')),
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL,
    revoked_ms   INTEGER,
    last_used_ms INTEGER
) STRICT;
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

-- Every sign-in attempt, kept for throttling and for the audit log.
CREATE TABLE login_events (
    event_id   INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    -- As typed (lower-cased), whether or not such a user exists.
    username   TEXT NOT NULL,
    ip         TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('success', 'password_ok', 'bad_password', 'bad_code', 'throttled'))
) STRICT;
CREATE INDEX login_events_by_user ON login_events (username, at_ms);
CREATE INDEX login_events_by_ip ON login_events (ip, at_ms);
