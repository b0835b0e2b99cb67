{{
    config(
        materialized='incremental',
        incremental_strategy=upsert_strategy(),
        unique_key='user_id',
        on_schema_change='fail',
        post_hook=[
            "{% if is_incremental_day() %}
                delete from {{ this }}
                where
                    user_id in (select user_id from ({{ changed_users(ref('int_event_versions')) }}) as changed)
                    and user_id not in (
                        select user_id from {{ ref('int_events_deduplicated') }} where user_id is not null
                    )
            {% endif %}",
        ],
        indexes=postgres_indexes([{'columns': ['user_id'], 'unique': true}]),
    )
}}

with

{% if is_incremental_day() %}

    changed_users as (

        {{ changed_users(ref('int_event_versions')) }}

    ),

    current_users as (

        select
            current_rows.*,
            changed_users.changed_from
        from {{ this }} as current_rows
        inner join changed_users
            on current_rows.user_id = changed_users.user_id

    ),

    changed_events as (

        -- A changed user's events from the earliest change on: the latest is among them if any is left.
        select events.*
        from {{ ref('int_events_deduplicated') }} as events
        inner join changed_users
            on
                events.user_id = changed_users.user_id
                and events.event_at >= changed_users.changed_from

    ),

    unchanged_latest as (

        -- A row older than every change is still the user's latest event when none is left after it.
        select
            user_id,
            first_name,
            last_name,
            gender,
            level,
            level_seen_at as event_at,
            cast(null as bigint) as session_id,
            cast(null as integer) as item_in_session
        from current_users
        where level_seen_at < changed_from

    ),

    emptied_users as (

        -- Users whose latest event was removed with nothing after it: their history before the change decides.
        select
            changed_users.user_id,
            changed_users.changed_from
        from changed_users
        where
            changed_users.user_id not in (select user_id from changed_events)
            and changed_users.user_id not in (select user_id from unchanged_latest)

    ),

    earlier_events as (

        select events.*
        from {{ ref('int_events_deduplicated') }} as events
        inner join emptied_users
            on
                events.user_id = emptied_users.user_id
                and events.event_at < emptied_users.changed_from

    ),

    events as (

        select
            user_id,
            first_name,
            last_name,
            gender,
            level,
            event_at,
            session_id,
            item_in_session
        from changed_events
        union all
        select
            user_id,
            first_name,
            last_name,
            gender,
            level,
            event_at,
            session_id,
            item_in_session
        from earlier_events
        union all
        select * from unchanged_latest

    ),

{% else %}

    events as (

        -- depends_on: {{ ref('int_event_versions') }}
        select * from {{ ref('int_events_deduplicated') }}
        where user_id is not null

    ),

{% endif %}

latest_first as (

    select
        user_id,
        first_name,
        last_name,
        gender,
        level,
        event_at,
        row_number() over (
            partition by user_id
            order by event_at desc, session_id desc, item_in_session desc
        ) as recency
    from events

),

final as (

    -- Text cast to the declared type: rows of the table and of the day then have the same types everywhere.
    select
        cast(user_id as {{ text_type() }}) as user_id,
        cast(first_name as {{ text_type() }}) as first_name,
        cast(last_name as {{ text_type() }}) as last_name,
        cast(gender as {{ text_type() }}) as gender,
        cast(level as {{ text_type() }}) as level,
        event_at as level_seen_at
    from latest_first
    where recency = 1

)

select * from final
