-- Share of plays matched to a song file: `dbt compile --select song_match_rates`, then run the compiled SQL,
-- once with the default strategy and once with --vars '{song_match_strategy: exact}' after rebuilding.
with

songplays as (

    select * from {{ ref('fct_songplays') }}

),

final as (

    select
        '{{ song_match_strategy() }}' as strategy,
        count(*) as plays,
        count(song_id) as matched_plays,
        round(100.0 * count(song_id) / nullif(count(*), 0), 2) as matched_percent
    from songplays

)

select * from final
