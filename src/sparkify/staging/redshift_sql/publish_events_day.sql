-- Replace the run's day of staging_events, and its quarantine, with the rows just copied and the lines COPY
-- rejected (stl_load_errors of the day's load table), in one transaction; then drop the load
-- table. Rerunning the day gives the same rows.
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

delete from {{ params.raw_schema }}.staging_quarantine
where source_table = 'staging_events' and log_date = '{{ ds }}';

insert into {{ params.raw_schema }}.staging_quarantine
select
    'staging_events' as source_table,
    '{{ ds }}'::date as log_date,
    rtrim(filename) as source_file,
    line_number as source_line,
    rtrim(raw_line) as raw_text,
    rtrim(err_reason) as reason,
    getdate() as quarantined_at
from stl_load_errors
where tbl = %s;

commit;

drop table {{ params.raw_schema }}.staging_events_{{ ds_nodash }};
