-- Addresses refused at the accept loop, before any TLS byte. `prefix` is an IPv4 address
-- (/32) or an IPv6 network (/64 by default). Rows stay after a ban ends: `offences` makes the
-- next ban of the same prefix longer (threat/bans.rs).
CREATE TABLE bans (
    prefix TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    offences INTEGER NOT NULL,
    lifted_ms INTEGER
) STRICT;
