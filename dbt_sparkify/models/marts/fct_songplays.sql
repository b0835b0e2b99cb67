{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='songplay_id',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental() and run_date_literal() %}
                delete from {{ this }} where log_date = {{ run_date_literal() }}
            {% endif %}",
        ],
    )
}}

with

events as (

    select * from {{ ref('stg_sparkify__events') }}
    where page = 'NextSong'
    {% if run_date_literal() %}
        and log_date = {{ run_date_literal() }}
    {% endif %}

),

songs as (

    select * from {{ ref('stg_sparkify__songs') }}

),

song_candidates as (

    -- Two song files can describe the same recording: the lowest song id wins, so a play matches at most once.
    select
        song_id,
        artist_id,
        title,
        artist_name,
        duration,
        row_number() over (
            partition by title, artist_name, duration
            order by song_id
        ) as candidate_rank
    from songs

),

matched as (

    select
        events.event_id,
        events.event_at,
        events.user_id,
        events.level,
        song_candidates.song_id,
        song_candidates.artist_id,
        events.session_id,
        events.item_in_session,
        events.location,
        events.user_agent,
        events.log_date
    from events
    left join song_candidates
        on
            events.song_title = song_candidates.title
            and events.artist_name = song_candidates.artist_name
            and events.song_length = song_candidates.duration
            and song_candidates.candidate_rank = 1

),

final as (

    select
        event_id as songplay_id,
        event_at as start_time,
        user_id,
        level,
        song_id,
        artist_id,
        session_id,
        item_in_session,
        location,
        user_agent,
        log_date
    from matched

)

select * from final
