-- Landing tables on Redshift: the shared landing schema (sparkify.staging.schema) with distribution and sort
-- keys. Events are read per session by stg_sparkify__events' de-duplication and replaced per day; the song
-- files are small and joined from every slice. Text is varchar(65535): an unqualified varchar is
-- varchar(256) on Redshift, and a longer value would fail the whole COPY (or, with TRUNCATECOLUMNS, be cut
-- without a word).
create schema if not exists {{ params.raw_schema }};

create table if not exists {{ params.raw_schema }}.staging_events (
    artist varchar(65535),
    auth varchar(65535),
    firstname varchar(65535),
    gender varchar(65535),
    iteminsession integer,
    lastname varchar(65535),
    length double precision,
    level varchar(65535),
    location varchar(65535),
    method varchar(65535),
    page varchar(65535),
    registration double precision,
    sessionid bigint,
    song varchar(65535),
    status integer,
    ts bigint,
    useragent varchar(65535),
    userid varchar(65535),
    log_date date,
    source_file varchar(65535),
    source_line integer,
    loaded_at timestamp default getdate()
)
distkey (sessionid)
sortkey (log_date, ts);

create table if not exists {{ params.raw_schema }}.staging_songs (
    num_songs integer,
    artist_id varchar(65535),
    artist_latitude double precision,
    artist_longitude double precision,
    artist_location varchar(65535),
    artist_name varchar(65535),
    song_id varchar(65535),
    title varchar(65535),
    duration double precision,
    year integer,
    source_file varchar(65535),
    loaded_at timestamp default getdate()
)
diststyle all
sortkey (song_id);

-- What COPY rejected (Redshift's stl_load_errors, copied here by the publish tasks) and the other
-- warehouses' staging refused: one row per bad line or song file.
create table if not exists {{ params.raw_schema }}.staging_quarantine (
    source_table varchar(65535),
    log_date date,
    source_file varchar(65535),
    source_line integer,
    raw_text varchar(65535),
    reason varchar(65535),
    quarantined_at timestamp
)
diststyle all;

-- The run's song files are copied into a table of their own, published once their rejects are counted (each
-- day's events likewise: create_day_load_table.sql).
drop table if exists {{ params.raw_schema }}.staging_songs_{{ ds_nodash }};
create table {{ params.raw_schema }}.staging_songs_{{ ds_nodash }} (like {{ params.raw_schema }}.staging_songs);
