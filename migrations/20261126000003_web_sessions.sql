-- Sign-in sessions, keyed by the SHA-256 of the session id. The id itself (the cookie's value)
-- is never stored: someone who can read this table cannot ride anyone's session.
-- Replaces the tower-sessions PostgreSQL store (schema tower_sessions, ids in clear); its
-- sessions are dropped, so everyone signs in once more.

drop schema if exists tower_sessions cascade;

create table web_session (
    id_hash bytea primary key check (octet_length(id_hash) = 32),
    data jsonb not null,
    expires_at timestamptz not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create index web_session_by_expiry on web_session (expires_at);

create trigger web_session_updated_at before update on web_session
    for each row execute function set_updated_at();
