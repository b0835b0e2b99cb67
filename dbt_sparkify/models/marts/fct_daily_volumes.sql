{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        unique_key='log_date',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental_day() %}
                delete from {{ this }}
                where log_date in ({{ changed_days(ref('int_event_versions')) }})
            {% endif %}",
        ],
        indexes=postgres_indexes([{'columns': ['log_date']}]),
        sort=['log_date'],
    )
}}

{#- The load's allowance, as staging has it (the vars only where a unit test fixes them). -#}
{%- set max_bad_records = var('max_bad_records', env_var('SPARKIFY_MAX_BAD_RECORDS', '10')) | int -%}
{%- set max_bad_ratio = var('max_bad_ratio', env_var('SPARKIFY_MAX_BAD_RATIO', '0.01')) | float -%}
{#- On the incremental path, the days the run's days changed (the `days` CTE); otherwise every day. -#}
{%- set in_days = 'log_date in (select log_date from days)' if is_incremental_day() else 'true' -%}

with

{% if is_incremental_day() %}

    days as (

        -- Each of the run's days has its row even when nothing of it was staged: an empty day is what this table flags.
        {{ changed_days(ref('int_event_versions')) }}

    ),

{% endif %}

events as (

    select
        log_date,
        count(*) as events_staged
    from {{ ref('stg_sparkify__events') }}
    where {{ in_days }}
    group by log_date

),

quarantined as (

    select
        log_date,
        count(*) as lines_quarantined
    from {{ ref('stg_sparkify__quarantine') }}
    where source_table = 'staging_events' and {{ in_days }}
    group by log_date

),

songplays as (

    select
        log_date,
        count(*) as songplays,
        count(song_id) as songplays_matched
    from {{ ref('fct_songplays') }}
    where {{ in_days }}
    group by log_date

),

{% if not is_incremental_day() %}

    days as (

        -- depends_on: {{ ref('int_event_versions') }}
        select log_date from events
        union
        select log_date from quarantined

    ),

{% endif %}

final as (

    select
        days.log_date,
        coalesce(events.events_staged, 0) as events_staged,
        coalesce(quarantined.lines_quarantined, 0) as lines_quarantined,
        -- The load's allowance (SPARKIFY_MAX_BAD_RECORDS and _RATIO): a day over it fails its staging.
        cast(
            greatest(
                {{ max_bad_records }},
                {{ max_bad_ratio }}
                * (coalesce(events.events_staged, 0) + coalesce(quarantined.lines_quarantined, 0))
            ) as double precision
        ) as quarantine_allowance,
        coalesce(songplays.songplays, 0) as songplays,
        coalesce(songplays.songplays_matched, 0) as songplays_matched
    from days
    left join events on days.log_date = events.log_date
    left join quarantined on days.log_date = quarantined.log_date
    left join songplays on days.log_date = songplays.log_date

)

select * from final
