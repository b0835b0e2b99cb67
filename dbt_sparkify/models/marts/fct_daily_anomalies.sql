{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        unique_key=['log_date', 'metric'],
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental_day() %}
                delete from {{ this }}
                where
                    log_date >= (select min(log_date) from ({{ changed_days(ref('int_event_versions')) }}) as changed)
                    and log_date <= (
                        select max(log_date) from ({{ changed_days(ref('int_event_versions')) }}) as changed
                    ) + {{ var('anomaly_window_days') | int }}
            {% endif %}",
        ],
        indexes=postgres_indexes([{'columns': ['log_date']}]),
        sort=['log_date'],
    )
}}

{%- set window_days = var('anomaly_window_days') | int -%}
{%- set min_history = var('anomaly_min_history_days') | int -%}
{%- set volume_band = var('anomaly_volume_band') | float -%}
{%- set match_rate_drop = var('anomaly_match_rate_drop') | float -%}
{%- set quarantine_share = var('anomaly_quarantine_share') | float -%}
{%- set float_type = 'double precision' -%}
{#- Days are shifted as `date + integer` (a date on every warehouse), not with dbt.dateadd (a timestamp). -#}

with

{% if is_incremental_day() %}

    changed as (

        -- The days whose counts the run's days changed, and the days whose trailing window reads one of them.
        select
            min(log_date) as first_day,
            max(log_date) + {{ window_days }} as last_day
        from ({{ changed_days(ref('int_event_versions')) }}) as changed_days

    ),

    volumes as (

        -- Those days and the window before the first.
        select volumes.*
        from {{ ref('fct_daily_volumes') }} as volumes
        inner join changed
            on
                volumes.log_date >= changed.first_day - {{ window_days }}
                and volumes.log_date <= changed.last_day

    ),

{% else %}

    volumes as (

        -- depends_on: {{ ref('int_event_versions') }}
        select * from {{ ref('fct_daily_volumes') }}

    ),

{% endif %}

-- One row per day and metric. quarantine_limit is the quarantine ratio a day may reach before it is flagged:
-- a share of the load's allowance, which staging enforces.
metrics as (

    {% for metric, column in [('events', 'events_staged'), ('songplays', 'songplays')] %}
        select
            log_date,
            '{{ metric }}' as metric,
            cast({{ column }} as {{ float_type }}) as metric_value,
            cast(null as {{ float_type }}) as quarantine_limit
        from volumes

        union all
    {% endfor %}

    select
        log_date,
        'song_match_rate' as metric,
        case
            when songplays > 0 then cast(songplays_matched as {{ float_type }}) / songplays
        end as metric_value,
        cast(null as {{ float_type }}) as quarantine_limit
    from volumes

    union all

    select
        log_date,
        'quarantine_ratio' as metric,
        case
            when events_staged + lines_quarantined > 0
                then cast(lines_quarantined as {{ float_type }}) / (events_staged + lines_quarantined)
        end as metric_value,
        case
            when events_staged + lines_quarantined > 0
                then {{ quarantine_share }} * quarantine_allowance / (events_staged + lines_quarantined)
        end as quarantine_limit
    from volumes

),

history_medians as (

    -- One sort-based aggregate per statement, over one expression: Redshift allows no more.
    select
        scoped.log_date,
        scoped.metric,
        percentile_cont(0.5) within group (order by history.metric_value) as trailing_median,
        count(history.metric_value) as trailing_days
    from metrics as scoped
    left join metrics as history
        on
            scoped.metric = history.metric
            and scoped.log_date > history.log_date
            and history.log_date >= scoped.log_date - {{ window_days }}
    {% if is_incremental_day() %}
        inner join changed
            on scoped.log_date >= changed.first_day and scoped.log_date <= changed.last_day
    {% endif %}
    group by scoped.log_date, scoped.metric

),

bounded as (

    select
        metrics.log_date,
        metrics.metric,
        metrics.metric_value,
        history_medians.trailing_median,
        history_medians.trailing_days,
        case
            when history_medians.trailing_days < {{ min_history }} then null
            when metrics.metric in ('events', 'songplays')
                then history_medians.trailing_median * {{ 1 - volume_band }}
            when metrics.metric = 'song_match_rate'
                then history_medians.trailing_median * {{ 1 - match_rate_drop }}
        end as lower_bound,
        case
            when metrics.metric = 'quarantine_ratio' then metrics.quarantine_limit
            when history_medians.trailing_days < {{ min_history }} then null
            when metrics.metric in ('events', 'songplays')
                then history_medians.trailing_median * {{ 1 + volume_band }}
        end as upper_bound
    from metrics
    inner join history_medians
        on
            metrics.log_date = history_medians.log_date
            and metrics.metric = history_medians.metric

),

final as (

    select
        log_date,
        metric,
        metric_value,
        cast(trailing_median as {{ float_type }}) as trailing_median,
        cast(trailing_days as integer) as trailing_days,
        cast(lower_bound as {{ float_type }}) as lower_bound,
        cast(upper_bound as {{ float_type }}) as upper_bound,
        coalesce(metric_value < lower_bound, false)
        or coalesce(metric_value > upper_bound, false) as is_anomaly
    from bounded

)

select * from final
