{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        unique_key='event_version_id',
        on_schema_change='fail',
        indexes=postgres_indexes([
            {'columns': ['log_date']},
            {'columns': ['session_id', 'item_in_session']},
        ]),
        sort=['log_date'],
        dist='even',
    )
}}

with

events as (

    select * from {{ ref('stg_sparkify__events') }}
    {% if is_incremental_day() %}
        where {{ run_date_filter('log_date') }}
    {% endif %}

),

versions as (

    select distinct
        log_date,
        event_id,
        session_id,
        item_in_session,
        user_id,
        event_at
    from events

),

{% if is_incremental_day() %}

    new_versions as (

        -- A day staged again adds what changed; what it no longer holds stays, as what the day once had.
        select * from versions
        except
        select
            log_date,
            event_id,
            session_id,
            item_in_session,
            user_id,
            event_at
        from {{ this }}
        where {{ run_date_filter('log_date') }}

    ),

{% else %}

    new_versions as (

        select * from versions

    ),

{% endif %}

final as (

    select
        {{ surrogate_key(['log_date', 'session_id', 'item_in_session', 'user_id', 'event_at']) }}
            as event_version_id,
        log_date,
        event_id,
        session_id,
        item_in_session,
        user_id,
        event_at
    from new_versions

)

select * from final
