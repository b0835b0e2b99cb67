-- A day's events are copied into a table of their own, published once their rejects are counted.
drop table if exists {{ raw_schema }}.staging_events_{{ day_nodash }};
create table {{ raw_schema }}.staging_events_{{ day_nodash }} (like {{ raw_schema }}.staging_events);
