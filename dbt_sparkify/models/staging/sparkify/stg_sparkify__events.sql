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

),

ranked as (

    -- The same event logged twice (within or across files) is kept once: its first occurrence. Where
    -- staging gives no line number (Redshift's COPY), the event's own fields break the tie, so the choice
    -- is the same at every run.
    select
        *,
        row_number() over (
            partition by session_id, item_in_session
            order by
                log_date,
                source_file,
                source_line,
                event_at,
                user_id,
                level,
                page,
                song_title,
                artist_name,
                song_length,
                first_name,
                last_name,
                gender,
                auth,
                method,
                status,
                location,
                user_agent,
                registered_at
        ) as occurrence
    from renamed

),

final as (

    select
        event_id,
        session_id,
        item_in_session,
        event_at,
        user_id,
        first_name,
        last_name,
        gender,
        level,
        auth,
        page,
        method,
        status,
        song_title,
        artist_name,
        song_length,
        location,
        user_agent,
        registered_at,
        log_date,
        source_file,
        source_line,
        loaded_at
    from ranked
    where occurrence = 1

)

select * from final
