{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        unique_key='start_time',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental_day() %}
                delete from {{ this }} where start_time in (
                    select event_at from ({{ changed_event_versions(ref('int_event_versions')) }}) as changed
                )
            {% endif %}",
        ],
        indexes=postgres_indexes([{'columns': ['start_time']}]),
        sort=['start_time'],
    )
}}

with

{% if is_incremental_day() %}

    changed_times as (

        -- The times of every version of the events the run's days have or had: the only start times it can add
        -- or remove.
        select distinct event_at as start_time
        from ({{ changed_event_versions(ref('int_event_versions')) }}) as changed

    ),

    start_times as (

        select distinct songplays.start_time
        from {{ ref('fct_songplays') }} as songplays
        inner join changed_times
            on songplays.start_time = changed_times.start_time

    ),

{% else %}

    start_times as (

        -- depends_on: {{ ref('int_event_versions') }}
        select distinct start_time from {{ ref('fct_songplays') }}

    ),

{% endif %}

final as (

    select
        start_time,
        cast(extract(hour from start_time) as integer) as hour,
        cast(extract(day from start_time) as integer) as day,
        cast(extract(week from start_time) as integer) as week,
        cast(extract(month from start_time) as integer) as month,
        cast(extract(year from start_time) as integer) as year,
        cast(extract(dow from start_time) as integer) as weekday
    from start_times

)

select * from final
