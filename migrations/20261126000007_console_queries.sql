-- Queries started in lakegate's query console (as opposed to the AWS CLI or an SDK using the
-- credentials URL): shown as such on the request page and listed on the console.
alter table athena_query add column from_console boolean not null default false;
