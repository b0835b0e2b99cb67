-- For each of the run's days (every staged day when run_date is unset) the songplays equal the
-- distinct NextSong events whose first occurrence is that day. Over all of history (run_date unset), no
-- songplay comes from a day that is not staged either. Returns the disagreeing days.
with

events as (

    select * from {{ ref('int_events_deduplicated') }}

),

songplays as (

    select * from {{ ref('fct_songplays') }}

),

staged as (

    select
        log_date,
        count(*) as next_song_events
    from events
    where page = 'NextSong' and {{ run_date_filter('log_date') }}
    group by log_date

),

loaded as (

    select
        log_date,
        count(*) as songplays
    from songplays
    where {{ run_date_filter('log_date') }}
    group by log_date

),

count_mismatches as (

    select
        coalesce(staged.log_date, loaded.log_date) as log_date,
        coalesce(staged.next_song_events, 0) as next_song_events,
        coalesce(loaded.songplays, 0) as songplays
    from staged
    full outer join loaded
        on staged.log_date = loaded.log_date
    where coalesce(staged.next_song_events, 0) != coalesce(loaded.songplays, 0)

),

{% if run_date_literal() is none %}

    staged_days as (

        select distinct log_date from {{ ref('stg_sparkify__events') }}

    ),

    unstaged_days as (

        select
            songplays.log_date,
            0 as next_song_events,
            count(*) as songplays
        from songplays
        left join staged_days
            on songplays.log_date = staged_days.log_date
        where staged_days.log_date is null
        group by songplays.log_date

    ),

{% else %}

    unstaged_days as (

        -- depends_on: {{ ref('stg_sparkify__events') }}
        select
            log_date,
            next_song_events,
            songplays
        from count_mismatches
        where false

    ),

{% endif %}

final as (

    select * from count_mismatches
    union all
    select * from unstaged_days

)

select * from final
