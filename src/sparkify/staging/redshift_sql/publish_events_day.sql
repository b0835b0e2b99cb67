-- Replace a day of staging_events, and its quarantine, with the rows just copied and the lines COPY
-- rejected (stl_load_errors of the day's load table), in one transaction; then drop the load
-- table. Rerunning the day gives the same rows.
begin;

delete from {{ raw_schema }}.staging_events
where log_date = '{{ day }}';

insert into {{ raw_schema }}.staging_events
select
    artist, auth, firstname, gender, iteminsession, lastname, length, level, location, method, page,
    registration, sessionid, song, status, ts, useragent, userid,
    '{{ day }}'::date as log_date,
    '{{ lake }}/{{ log_key }}' as source_file,
    null::integer as source_line,
    getdate() as loaded_at
from {{ raw_schema }}.staging_events_{{ day_nodash }};

delete from {{ raw_schema }}.staging_quarantine
where source_table = 'staging_events' and log_date = '{{ day }}';

insert into {{ raw_schema }}.staging_quarantine
select
    'staging_events' as source_table,
    '{{ day }}'::date as log_date,
    rtrim(filename) as source_file,
    line_number as source_line,
    rtrim(raw_line) as raw_text,
    rtrim(err_reason) as reason,
    getdate() as quarantined_at
from stl_load_errors
where tbl = %s;

commit;

drop table {{ raw_schema }}.staging_events_{{ day_nodash }};
