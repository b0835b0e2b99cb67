with

events as (

    select * from {{ ref('stg_sparkify__events') }}
    where user_id is not null

),

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

    select
        user_id,
        first_name,
        last_name,
        gender,
        level,
        event_at as level_seen_at
    from latest_first
    where recency = 1

)

select * from final
