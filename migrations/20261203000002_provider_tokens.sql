-- The identity provider's tokens from each person's latest sign-in, with which lakegate re-reads
-- the groups their personal API tokens act with, as it does for a browser session. One row per
-- person: the latest sign-in replaces it; a refusal by the provider removes it.
create table provider_tokens (
    subject text primary key,
    tokens jsonb not null,
    groups_checked_at timestamptz not null
);
