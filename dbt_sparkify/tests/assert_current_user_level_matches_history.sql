-- Every user has exactly one current level period, and its level is dim_users' level. Returns the users for
-- whom the two disagree.
with

users as (

    select * from {{ ref('dim_users') }}

),

user_levels as (

    select * from {{ ref('dim_user_levels') }}

),

current_periods as (

    select
        user_id,
        count(*) as current_periods,
        max(level) as current_level
    from user_levels
    where is_current
    group by user_id

),

final as (

    select
        users.user_id,
        users.level,
        current_periods.current_level,
        coalesce(current_periods.current_periods, 0) as current_periods
    from users
    left join current_periods
        on users.user_id = current_periods.user_id
    where
        current_periods.user_id is null
        or current_periods.current_periods != 1
        or current_periods.current_level != users.level

)

select * from final
