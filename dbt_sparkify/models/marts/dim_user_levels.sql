with

events as (

    select * from {{ ref('stg_sparkify__events') }}
    where user_id is not null

),

sequenced as (

    select
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

    select
        {{ surrogate_key(['user_id', 'session_id', 'item_in_session']) }} as user_level_id,
        user_id,
        level,
        valid_from,
        valid_to,
        valid_to is null as is_current
    from periods

)

select * from final
