with

source as (

    select * from {{ source('sparkify', 'staging_songs') }}

),

renamed as (

    select
        song_id,
        title,
        artist_id,
        artist_name,
        artist_latitude,
        artist_longitude,
        duration,
        source_file,
        loaded_at,
        nullif(trim(artist_location), '') as artist_location,
        nullif(year, 0) as release_year
    from source

),

ranked as (

    -- A song id found in two files is kept once, from the first file by path. Where staging does not
    -- know the file (Redshift's COPY), the song's own fields break the tie, so the choice is the same at
    -- every run.
    select
        *,
        row_number() over (
            partition by song_id
            order by
                source_file,
                title,
                artist_id,
                artist_name,
                duration,
                release_year,
                artist_location,
                artist_latitude,
                artist_longitude
        ) as occurrence
    from renamed

),

final as (

    select
        song_id,
        title,
        artist_id,
        artist_name,
        artist_location,
        artist_latitude,
        artist_longitude,
        duration,
        release_year,
        source_file,
        loaded_at
    from ranked
    where occurrence = 1

)

select * from final
