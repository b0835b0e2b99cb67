{%- set columns = ['artist_id', 'artist_name', 'location', 'latitude', 'longitude'] -%}
{{
    config(
        materialized='incremental',
        incremental_strategy=upsert_strategy(),
        unique_key='artist_id',
        on_schema_change='fail',
        post_hook=[
            "{% if is_incremental() %}
                delete from {{ this }}
                where artist_id not in (select artist_id from {{ ref('stg_sparkify__songs') }})
            {% endif %}",
        ],
        indexes=postgres_indexes([{'columns': ['artist_id'], 'unique': true}]),
    )
}}

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

    -- Text cast to the declared type: rows of the table and of the day then have the same types everywhere.
    select
        cast(artist_id as {{ text_type() }}) as artist_id,
        cast(artist_name as {{ text_type() }}) as artist_name,
        cast(artist_location as {{ text_type() }}) as location,
        artist_latitude as latitude,
        artist_longitude as longitude
    from ranked
    where preference = 1

)

{% if is_incremental_day() %}

    -- New and changed artists only (the song files do not grow with the days loaded); removed ones go in the
    -- post-hook.
    select final.*
    from final
    left join {{ this }} as current_rows
        on final.artist_id = current_rows.artist_id
    where current_rows.artist_id is null or not ({{ same_values('final', 'current_rows', columns) }})

{% else %}

    select * from final

{% endif %}
