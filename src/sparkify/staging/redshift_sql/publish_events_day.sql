-- Replace the run's day of staging_events with the rows just copied, in one transaction, then drop the
-- day's load table. Rerunning the day gives the same rows.
begin;

delete from {{ params.raw_schema }}.staging_events
where log_date = '{{ ds }}';

insert into {{ params.raw_schema }}.staging_events
select
    artist, auth, firstname, gender, iteminsession, lastname, length, level, location, method, page,
    registration, sessionid, song, status, ts, useragent, userid,
    '{{ ds }}'::date as log_date,
    '{{ params.lake }}/{{ log_key }}' as source_file,
    null::integer as source_line,
    getdate() as loaded_at
from {{ params.raw_schema }}.staging_events_{{ ds_nodash }};

commit;

drop table {{ params.raw_schema }}.staging_events_{{ ds_nodash }};
