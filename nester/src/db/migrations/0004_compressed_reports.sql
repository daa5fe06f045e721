-- Signed reports are stored compressed (lossless: the exact bytes come back on read).
-- `identity` rows hold the JWS as received; `lz4` rows hold it LZ4-compressed (size-prefixed).
ALTER TABLE reports ADD COLUMN jws_encoding TEXT NOT NULL DEFAULT 'identity';
