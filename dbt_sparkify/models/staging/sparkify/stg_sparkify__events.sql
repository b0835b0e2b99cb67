with

source as (

    select * from {{ source('sparkify', 'staging_events') }}

),

renamed as (

    select
        {{ surrogate_key(['sessionid', 'iteminsession']) }} as event_id,
        sessionid as session_id,
        iteminsession as item_in_session,
        {{ epoch_ms_to_timestamp('ts') }} as event_at,
        nullif(userid, '') as user_id,
        firstname as first_name,
        lastname as last_name,
        gender,
        level,
        auth,
        page,
        method,
        status,
        song as song_title,
        artist as artist_name,
        length as song_length,
        location,
        useragent as user_agent,
        {{ epoch_ms_to_timestamp('registration') }} as registered_at,
        log_date,
        source_file,
        source_line,
        loaded_at
    from source

)

select * from renamed
