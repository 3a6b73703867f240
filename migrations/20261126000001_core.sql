-- lakegate core schema: access requests, their resources and decisions, and the audit trail.

create function set_updated_at() returns trigger language plpgsql as $$
begin
    new.updated_at := now();
    return new;
end;
$$;

create table access_request (
    request_id uuid primary key,
    requester_subject text not null,
    requester_email text not null,
    requester_name text,
    reason text not null check (char_length(reason) between 10 and 2000),
    duration_seconds integer not null check (duration_seconds > 0),
    status text not null default 'pending' check (
        status in ('pending', 'approved', 'active', 'revoking', 'expired', 'revoked', 'denied', 'cancelled', 'failed')
    ),
    -- set when revoking starts: where the request ends up, and why
    end_state text check (end_state in ('expired', 'revoked', 'failed')),
    end_reason text,
    decided_at timestamptz,
    activated_at timestamptz,
    expires_at timestamptz,
    revoke_started_at timestamptz,
    ended_at timestamptz,
    -- background work: the next provisioning or revoke step, written before it is taken
    step text,
    attempts integer not null default 0,
    next_attempt_at timestamptz,
    lease_owner text,
    lease_until timestamptz,
    last_error text,
    -- what lakegate creates in AWS, derived from the request id and recorded at approval
    role_name text,
    role_arn text,
    workgroup text,
    results_uri text,
    lf_grants jsonb,
    -- sha-256 of the credentials token; the token itself is never stored
    credentials_token_hash bytea,
    credentials_token_issued_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint access_request_active_has_expiry check (status <> 'active' or expires_at is not null),
    constraint access_request_revoking_has_end check (status <> 'revoking' or end_state is not null),
    constraint access_request_approved_has_plan check (
        status in ('pending', 'denied', 'cancelled') or (role_arn is not null and lf_grants is not null)
    )
);

create trigger access_request_updated_at before update on access_request
    for each row execute function set_updated_at();

create index access_request_by_requester on access_request (requester_subject, created_at desc);
create index access_request_by_status on access_request (status, created_at desc);
create index access_request_active_expiry on access_request (expires_at) where status = 'active';
create index access_request_in_progress on access_request (next_attempt_at) where status in ('approved', 'revoking');

create table request_resource (
    request_id uuid not null references access_request (request_id),
    position smallint not null check (position >= 0),
    database_name text not null,
    table_name text not null,
    -- null means every column
    columns text[],
    primary key (request_id, position),
    constraint request_resource_table_once unique (request_id, database_name, table_name)
);

create table request_decision (
    decision_id bigint generated always as identity primary key,
    request_id uuid not null references access_request (request_id),
    decision text not null check (decision in ('approve', 'deny')),
    actor_subject text not null,
    actor_email text not null,
    comment text,
    decided_at timestamptz not null,
    created_at timestamptz not null default now(),
    constraint request_decision_once_per_actor unique (request_id, actor_subject)
);

create table audit_event (
    event_id bigint generated always as identity primary key,
    occurred_at timestamptz not null,
    request_id uuid references access_request (request_id),
    -- null actor: lakegate itself (the reaper, the provisioner)
    actor_subject text,
    actor_email text,
    action text not null,
    detail jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now()
);

create index audit_event_by_request on audit_event (request_id, event_id);

create function audit_event_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_event is append-only';
end;
$$;

create trigger audit_event_no_update before update or delete on audit_event
    for each row execute function audit_event_append_only();
create trigger audit_event_no_truncate before truncate on audit_event
    for each statement execute function audit_event_append_only();
