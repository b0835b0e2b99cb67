{{
    config(
        materialized='incremental',
        incremental_strategy=upsert_strategy(),
        unique_key='user_level_id',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental_day() %}
                delete from {{ this }}
                where user_level_id in (
                    select periods.user_level_id
                    from {{ this }} as periods
                    inner join ({{ changed_users(ref('int_event_versions')) }}) as changed
                        on periods.user_id = changed.user_id and periods.valid_from >= changed.changed_from
                )
            {% endif %}",
        ],
        indexes=postgres_indexes([{'columns': ['user_id', 'valid_from']}]),
    )
}}

with

{% if is_incremental_day() %}

    changed_users as (

        {{ changed_users(ref('int_event_versions')) }}

    ),

    open_periods as (

        -- The periods from the earliest change on are gone (pre-hook); each changed user's last one left is the
        -- period the change falls in. It starts the user's sequence again, with its own id and level.
        select
            periods.user_level_id,
            periods.user_id,
            periods.level,
            periods.valid_from,
            row_number() over (partition by periods.user_id order by periods.valid_from desc) as recency
        from {{ this }} as periods
        inner join changed_users
            on periods.user_id = changed_users.user_id

    ),

    events as (

        select
            cast(null as {{ text_type() }}) as user_level_id,
            events.user_id,
            events.level,
            events.event_at,
            events.session_id,
            events.item_in_session
        from {{ ref('int_events_deduplicated') }} as events
        inner join changed_users
            on
                events.user_id = changed_users.user_id
                and events.event_at >= changed_users.changed_from
        union all
        select
            user_level_id,
            user_id,
            level,
            valid_from as event_at,
            cast(null as bigint) as session_id,
            cast(null as integer) as item_in_session
        from open_periods
        where recency = 1

    ),

{% else %}

    events as (

        -- depends_on: {{ ref('int_event_versions') }}
        select
            cast(null as {{ text_type() }}) as user_level_id,
            user_id,
            level,
            event_at,
            session_id,
            item_in_session
        from {{ ref('int_events_deduplicated') }}
        where user_id is not null

    ),

{% endif %}

sequenced as (

    select
        user_level_id,
        user_id,
        level,
        event_at,
        session_id,
        item_in_session,
        lag(level) over (
            partition by user_id
            order by event_at, session_id, item_in_session
        ) as previous_level
    from events

),

period_starts as (

    -- A period starts at a user's first event and at every event whose level differs from the one before.
    select
        user_level_id,
        user_id,
        level,
        event_at,
        session_id,
        item_in_session
    from sequenced
    where previous_level is null or previous_level != level

),

periods as (

    select
        user_level_id,
        user_id,
        level,
        session_id,
        item_in_session,
        event_at as valid_from,
        lead(event_at) over (
            partition by user_id
            order by event_at, session_id, item_in_session
        ) as valid_to
    from period_starts

),

final as (

    -- Text cast to the declared type: rows of the table and of the day then have the same types everywhere.
    select
        cast(coalesce(
            user_level_id, {{ surrogate_key(['user_id', 'session_id', 'item_in_session']) }}
        ) as {{ text_type() }}) as user_level_id,
        cast(user_id as {{ text_type() }}) as user_id,
        cast(level as {{ text_type() }}) as level,
        valid_from,
        valid_to,
        valid_to is null as is_current
    from periods

)

select * from final
