-- Accounts. Local accounts have a password hash (argon2id PHC string); SSO accounts are keyed by
-- issuer + subject and have none.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL COLLATE NOCASE,
    password_hash TEXT,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'viewer')),
    email         TEXT,
    oidc_issuer   TEXT,
    oidc_subject  TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (oidc_issuer, oidc_subject)
);
-- Local usernames are unique; an SSO user may share a name with a local account (different issuer).
CREATE UNIQUE INDEX users_local_username ON users (username) WHERE oidc_subject IS NULL;

-- Failed sign-in attempts per account name and per client IP; survives restarts so a lockout
-- cannot be lifted by restarting Pulse.
CREATE TABLE login_failures (
    scope        TEXT    NOT NULL CHECK (scope IN ('account', 'ip')),
    subject      TEXT    NOT NULL,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    locked_until INTEGER,
    PRIMARY KEY (scope, subject)
);

-- Settings edited in the UI (environment variables override them at run time).
CREATE TABLE settings (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Who did what, when, from where. Never holds a secret.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    event    TEXT    NOT NULL,
    outcome  TEXT    NOT NULL,
    reason   TEXT,
    username TEXT,
    ip       TEXT,
    method   TEXT,
    detail   TEXT
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
