{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        unique_key='event_id',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental_day() %}
                delete from {{ this }} where event_id in (
                    select event_id from ({{ changed_event_versions(ref('int_event_versions')) }}) as changed
                )
            {% endif %}",
        ],
        indexes=postgres_indexes([
            {'columns': ['event_id']},
            {'columns': ['session_id', 'item_in_session']},
            {'columns': ['user_id', 'event_at']},
            {'columns': ['log_date']},
        ]),
        sort=['log_date'],
        dist='even',
    )
}}

with

{% if is_incremental_day() %}

    changed_keys as (

        {{ changed_event_keys(ref('int_event_versions')) }}

    ),

    occurrences as (

        -- Every staged occurrence, on any day, of the events the run's days have or had.
        select events.*
        from {{ ref('stg_sparkify__events') }} as events
        inner join changed_keys
            on
                events.session_id = changed_keys.session_id
                and events.item_in_session = changed_keys.item_in_session

    ),

{% else %}

    occurrences as (

        -- depends_on: {{ ref('int_event_versions') }}
        select * from {{ ref('stg_sparkify__events') }}

    ),

{% endif %}

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
    from occurrences

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
