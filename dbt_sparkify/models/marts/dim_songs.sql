with

songs as (

    select * from {{ ref('stg_sparkify__songs') }}

),

final as (

    select
        song_id,
        title,
        artist_id,
        release_year,
        duration
    from songs

)

select * from final
