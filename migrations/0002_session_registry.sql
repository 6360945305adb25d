-- One row per signed-in session, keyed by the random binding kept inside the session. It lets a
-- session be listed, revoked (by its owner, an admin, or the identity provider's back-channel
-- logout) without reading the opaque session store.
CREATE TABLE session_registry (
    binding        TEXT    PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    username       TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    oidc_issuer    TEXT,
    oidc_subject   TEXT,
    oidc_sid       TEXT,
    has_refresh    INTEGER NOT NULL DEFAULT 0,
    ip             TEXT,
    user_agent     TEXT,
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE INDEX session_registry_user ON session_registry (user_id);
CREATE INDEX session_registry_sid ON session_registry (oidc_issuer, oidc_sid);
CREATE INDEX session_registry_subject ON session_registry (oidc_issuer, oidc_subject);

-- Back-channel logout tokens already used (jti), kept until they could no longer be accepted.
CREATE TABLE seen_logout_tokens (
    jti        TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
