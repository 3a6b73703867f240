-- Each request's approver groups, from the policy when it was submitted (and brought up to date
-- at start-up, when the policy may have changed): approvers' queues select on them in SQL, so a
-- flood of requests nobody can decide never pushes others out of anyone's queue.
alter table access_request add column approver_groups text[] not null default '{}';
create index access_request_open_by_group on access_request using gin (approver_groups)
    where status in ('pending', 'approved', 'active', 'revoking');
create index access_request_pending_by_requester on access_request (requester_subject)
    where status = 'pending';
create index access_request_pending_by_age on access_request (created_at)
    where status = 'pending';

-- A request nobody decides within LAKEGATE_PENDING_TTL lapses; so does an extension still
-- pending when its grant ends.
alter table access_request drop constraint access_request_status_check;
alter table access_request add constraint access_request_status_check check (
    status in ('pending', 'approved', 'active', 'revoking', 'expired', 'revoked', 'denied', 'cancelled', 'failed', 'lapsed')
);
alter table request_extension drop constraint request_extension_status_check;
alter table request_extension add constraint request_extension_status_check check (
    status in ('pending', 'approved', 'denied', 'lapsed')
);
-- A lapsed request, like a denied one, never had a grant.
alter table access_request drop constraint access_request_approved_has_plan;
alter table access_request add constraint access_request_approved_has_plan check (
    status in ('pending', 'denied', 'cancelled', 'lapsed') or (role_arn is not null and lf_grants is not null)
);
