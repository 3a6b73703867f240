-- The approval policy: what the policy needs to re-evaluate a request later, approvals from
-- several people, break-glass activations and their review, and extensions of live grants.

alter table access_request
    -- the requester's groups when they asked: auto-approval and break-glass depend on them
    add column requester_groups text[] not null default '{}',
    add column break_glass boolean not null default false,
    add column auto_approved boolean not null default false,
    add column reviewed_at timestamptz,
    add column reviewed_by_subject text,
    add column reviewed_by_email text,
    add column review_comment text,
    -- fixed at approval from the policy's rules
    add column scan_cutoff_bytes bigint check (scan_cutoff_bytes >= 10000000),
    add column scan_budget_bytes bigint check (scan_budget_bytes > 0),
    -- time added by approved extensions
    add column extended_seconds integer not null default 0 check (extended_seconds >= 0),
    add constraint access_request_review_needs_break_glass check (reviewed_at is null or break_glass);

create index access_request_needs_review on access_request (created_at)
    where break_glass and reviewed_at is null;

-- the table's columns in the catalog when it was requested: what an all-columns request covers
alter table request_resource add column catalog_columns text[];

create table request_extension (
    extension_id bigint generated always as identity primary key,
    request_id uuid not null references access_request (request_id),
    extra_seconds integer not null check (extra_seconds > 0),
    reason text not null check (char_length(reason) between 10 and 2000),
    status text not null default 'pending' check (status in ('pending', 'approved', 'denied')),
    auto_approved boolean not null default false,
    requested_at timestamptz not null,
    decided_at timestamptz,
    created_at timestamptz not null default now()
);

-- one open extension per grant at a time
create unique index request_extension_one_pending on request_extension (request_id)
    where status = 'pending';
create index request_extension_by_request on request_extension (request_id, extension_id);

-- decisions on a request (extension_id null) or on one of its extensions; each person decides
-- each once, and their groups at that moment say which requirements their approval fills
alter table request_decision
    add column actor_groups text[] not null default '{}',
    add column extension_id bigint references request_extension (extension_id),
    drop constraint request_decision_once_per_actor,
    add constraint request_decision_once_per_actor unique nulls not distinct (request_id, extension_id, actor_subject);
