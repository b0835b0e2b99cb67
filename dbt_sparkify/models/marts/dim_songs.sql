{%- set columns = ['song_id', 'title', 'artist_id', 'release_year', 'duration'] -%}
{{
    config(
        materialized='incremental',
        incremental_strategy=upsert_strategy(),
        unique_key='song_id',
        on_schema_change='fail',
        post_hook=[
            "{% if is_incremental() %}
                delete from {{ this }}
                where song_id not in (select song_id from {{ ref('stg_sparkify__songs') }})
            {% endif %}",
        ],
        indexes=postgres_indexes([{'columns': ['song_id'], 'unique': true}]),
    )
}}

with

songs as (

    select * from {{ ref('stg_sparkify__songs') }}

),

final as (

    -- Text cast to the declared type: rows of the table and of the day then have the same types everywhere.
    select
        cast(song_id as {{ text_type() }}) as song_id,
        cast(title as {{ text_type() }}) as title,
        cast(artist_id as {{ text_type() }}) as artist_id,
        release_year,
        duration
    from songs

)

{% if is_incremental_day() %}

    -- New and changed songs only (the song files do not grow with the days loaded); removed ones go in the
    -- post-hook.
    select final.*
    from final
    left join {{ this }} as current_rows
        on final.song_id = current_rows.song_id
    where current_rows.song_id is null or not ({{ same_values('final', 'current_rows', columns) }})

{% else %}

    select * from final

{% endif %}
