-- Replace staging_songs, and the song files' quarantine, with the rows just copied and the files COPY
-- rejected (stl_load_errors of the songs' load table), in one transaction; then drop the
-- load table.
begin;

delete from {{ params.raw_schema }}.staging_songs;

insert into {{ params.raw_schema }}.staging_songs
select
    num_songs, artist_id, artist_latitude, artist_longitude, artist_location, artist_name, song_id, title,
    duration, year,
    '{{ params.lake }}/song_data' as source_file,
    getdate() as loaded_at
from {{ params.raw_schema }}.staging_songs_{{ ds_nodash }};

delete from {{ params.raw_schema }}.staging_quarantine
where source_table = 'staging_songs';

insert into {{ params.raw_schema }}.staging_quarantine
select
    'staging_songs' as source_table,
    null::date as log_date,
    rtrim(filename) as source_file,
    null::integer as source_line,
    rtrim(raw_line) as raw_text,
    rtrim(err_reason) as reason,
    getdate() as quarantined_at
from stl_load_errors
where tbl = %s;

commit;

drop table {{ params.raw_schema }}.staging_songs_{{ ds_nodash }};
