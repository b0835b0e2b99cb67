with

source as (

    select * from {{ source('sparkify', 'staging_quarantine') }}

),

renamed as (

    select
        source_table,
        log_date,
        source_file,
        source_line,
        reason,
        quarantined_at
    from source

)

select * from renamed
