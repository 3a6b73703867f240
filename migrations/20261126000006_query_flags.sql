-- Pattern flags on a grant's queries (lakegate_domain::usage::QueryFlag, tagged by code).
alter table athena_query add column flags jsonb not null default '[]'::jsonb;
