-- Raw landing tables on Redshift: the shared raw schema (sparkify.staging.schema) with distribution and sort
-- keys. Events are read per session by stg_sparkify__events' de-duplication and replaced per day; the song
-- files are small and joined from every slice.
create schema if not exists {{ params.raw_schema }};

create table if not exists {{ params.raw_schema }}.staging_events (
    artist varchar(512),
    auth varchar(32),
    firstname varchar(256),
    gender varchar(8),
    iteminsession integer,
    lastname varchar(256),
    length double precision,
    level varchar(16),
    location varchar(512),
    method varchar(16),
    page varchar(64),
    registration double precision,
    sessionid bigint,
    song varchar(512),
    status integer,
    ts bigint,
    useragent varchar(1024),
    userid varchar(64),
    log_date date,
    source_file varchar(1024),
    source_line integer,
    loaded_at timestamp default getdate()
)
distkey (sessionid)
sortkey (log_date, ts);

create table if not exists {{ params.raw_schema }}.staging_songs (
    num_songs integer,
    artist_id varchar(64),
    artist_latitude double precision,
    artist_longitude double precision,
    artist_location varchar(512),
    artist_name varchar(512),
    song_id varchar(64),
    title varchar(512),
    duration double precision,
    year integer,
    source_file varchar(1024),
    loaded_at timestamp default getdate()
)
diststyle all
sortkey (song_id);

-- The run's day is copied into a table of its own, so days loading at once never share one.
drop table if exists {{ params.raw_schema }}.staging_events_{{ ds_nodash }};
create table {{ params.raw_schema }}.staging_events_{{ ds_nodash }} (like {{ params.raw_schema }}.staging_events);
