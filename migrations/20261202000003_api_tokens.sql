-- Personal API tokens: a person's own, for scripts, the CLI and agents. The token is shown once
-- and stored only as its SHA-256; it acts with its owner's identity and groups (as last seen at
-- sign-in), never beyond its scopes, and not after it expires or is revoked.
create table api_token (
    token_id uuid primary key,
    owner_subject text not null,
    owner_email text not null,
    owner_name text,
    owner_groups text[] not null,
    name text not null check (char_length(name) between 1 and 100),
    scopes text[] not null check (cardinality(scopes) > 0),
    token_hash bytea not null unique,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    revoked_at timestamptz,
    last_used_at timestamptz
);
create index api_token_by_owner on api_token (owner_subject, created_at);
