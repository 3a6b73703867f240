-- When the worker denied a grant's sessions (the first teardown step), so that the grant's
-- `grant.ended` audit event can say how long after its expiry (or its revoke) every session
-- stopped working (docs/decisions/0021-deny-first-and-side-by-side.md).
alter table access_request add column sessions_denied_at timestamptz;
