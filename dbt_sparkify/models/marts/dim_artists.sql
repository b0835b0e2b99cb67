with

songs as (

    select * from {{ ref('stg_sparkify__songs') }}

),

ranked as (

    -- An artist's songs can disagree on name or location: prefer a located one, then the lowest song id.
    select
        artist_id,
        artist_name,
        artist_location,
        artist_latitude,
        artist_longitude,
        row_number() over (
            partition by artist_id
            order by
                case when artist_location is null then 1 else 0 end,
                song_id
        ) as preference
    from songs

),

final as (

    select
        artist_id,
        artist_name,
        artist_location as location,
        artist_latitude as latitude,
        artist_longitude as longitude
    from ranked
    where preference = 1

)

select * from final
