{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        unique_key='songplay_id',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental_day() %}
                delete from {{ this }} where songplay_id in (
                    select event_id from ({{ changed_event_versions(ref('int_event_versions')) }}) as changed
                )
            {% endif %}",
        ],
        indexes=postgres_indexes([
            {'columns': ['songplay_id']},
            {'columns': ['log_date']},
            {'columns': ['start_time']},
        ]),
        dist='user_id',
        sort=['log_date', 'start_time'],
    )
}}

{%- set strategy = song_match_strategy() -%}
{%- set tolerance = var('song_match_duration_tolerance', 1.0) | float -%}

with

{% if is_incremental_day() %}

    changed_keys as (

        {{ changed_event_keys(ref('int_event_versions')) }}

    ),

    events as (

        -- The plays among the events the run's days have or had, wherever their first occurrence now is.
        select deduplicated.*
        from {{ ref('int_events_deduplicated') }} as deduplicated
        inner join changed_keys
            on
                deduplicated.session_id = changed_keys.session_id
                and deduplicated.item_in_session = changed_keys.item_in_session
        where deduplicated.page = 'NextSong'

    ),

{% else %}

    events as (

        -- depends_on: {{ ref('int_event_versions') }}
        select * from {{ ref('int_events_deduplicated') }}
        where page = 'NextSong'

    ),

{% endif %}

songs as (

    select * from {{ ref('stg_sparkify__songs') }}

),

plays as (

    select
        event_id,
        event_at,
        user_id,
        level,
        session_id,
        item_in_session,
        location,
        user_agent,
        log_date,
        song_title,
        artist_name,
        song_length,
        {{ normalize_text('song_title') }} as title_key,
        {{ normalize_text('artist_name') }} as artist_key
    from events

),

song_keys as (

    select
        song_id,
        artist_id,
        title,
        artist_name,
        duration,
        {{ normalize_text('title') }} as title_key,
        {{ normalize_text('artist_name') }} as artist_key
    from songs

),

candidates as (

    -- Every song a play could be; the ranking below keeps one, so a play is never duplicated.
    select
        plays.event_id,
        song_keys.song_id,
        song_keys.artist_id,
        row_number() over (
            partition by plays.event_id
            order by
                abs(song_keys.duration - plays.song_length),
                case
                    when
                        song_keys.title = plays.song_title
                        and song_keys.artist_name = plays.artist_name
                        then 0
                    else 1
                end,
                song_keys.song_id
        ) as preference
    from plays
    inner join song_keys
    {% if strategy == 'exact' %}
            on
                plays.song_title = song_keys.title
                and plays.artist_name = song_keys.artist_name
                and plays.song_length = song_keys.duration
        {% else %}
            on
                plays.title_key = song_keys.title_key
                and plays.artist_key = song_keys.artist_key
                and abs(plays.song_length - song_keys.duration) <= {{ tolerance }}
    {% endif %}

),

matched as (

    select
        event_id,
        song_id,
        artist_id
    from candidates
    where preference = 1

),

final as (

    -- Text cast to the declared type: the day's rows then have the table's types on every warehouse, as an
    -- incremental run checks (on_schema_change).
    select
        cast(plays.event_id as {{ text_type() }}) as songplay_id,
        plays.event_at as start_time,
        cast(plays.user_id as {{ text_type() }}) as user_id,
        cast(plays.level as {{ text_type() }}) as level,
        cast(matched.song_id as {{ text_type() }}) as song_id,
        cast(matched.artist_id as {{ text_type() }}) as artist_id,
        plays.session_id,
        plays.item_in_session,
        cast(plays.location as {{ text_type() }}) as location,
        cast(plays.user_agent as {{ text_type() }}) as user_agent,
        plays.log_date
    from plays
    left join matched
        on plays.event_id = matched.event_id

)

select * from final
