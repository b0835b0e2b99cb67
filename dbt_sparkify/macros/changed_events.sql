{#- What a run's days can change, from int_event_versions (`versions`): every version ever staged of the days'
    events. An incremental model recomputes exactly these keys; the rest of history is not read. -#}

{#- The events (session_id, item_in_session) the run's days have or ever had. -#}
{% macro changed_event_keys(versions) -%}
    select distinct
        session_id,
        item_in_session
    from {{ versions }}
    where {{ run_date_filter('log_date') }}
{%- endmacro %}

{#- Every version, on any day, of the events the run's day has or ever had: their users and times, old and new. -#}
{% macro changed_event_versions(versions) -%}
    select
        all_versions.session_id,
        all_versions.item_in_session,
        all_versions.event_id,
        all_versions.user_id,
        all_versions.event_at
    from {{ versions }} as all_versions
    inner join ({{ changed_event_keys(versions) }}) as changed_keys
        on
            all_versions.session_id = changed_keys.session_id
            and all_versions.item_in_session = changed_keys.item_in_session
{%- endmacro %}

{#- Each user with a changed event, and the earliest time one of them happened (any version): the user's history
    before that time is as it was. -#}
{% macro changed_users(versions) -%}
    select
        user_id,
        min(event_at) as changed_from
    from ({{ changed_event_versions(versions) }}) as changed
    where user_id is not null
    group by user_id
{%- endmacro %}

{#- Whether a model runs for one day on an existing table: the incremental path. Otherwise (first build,
    --full-refresh, or no run date) the model is built from all of history. -#}
{% macro is_incremental_day() -%}
    {#- The run date first: without one, no question to the warehouse (dbt compile --no-introspect works). -#}
    {{ return(run_date_literal() is not none and is_incremental()) }}
{%- endmacro %}

{#- The incremental strategy that replaces rows by their unique key, as each warehouse does it best. -#}
{% macro upsert_strategy() -%}
    {{ return(adapter.dispatch('upsert_strategy', 'sparkify')()) }}
{%- endmacro %}

{#- DuckDB and Redshift: a delete of the batch's keys, then an insert, in one transaction (Redshift runs its
    MERGE as exactly that). -#}
{% macro default__upsert_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{#- PostgreSQL (15+): one MERGE, which updates the rows in place instead of leaving deleted ones behind. -#}
{% macro postgres__upsert_strategy() -%}
    {{ return('merge') }}
{%- endmacro %}

{#- True where the two relations' columns are equal or both null (rows the same), on every warehouse. -#}
{% macro same_values(left, right, columns) -%}
    {%- for column in columns %}
        {%- if not loop.first %} and {% endif -%}
        ({{ left }}.{{ column }} = {{ right }}.{{ column }}
        or ({{ left }}.{{ column }} is null and {{ right }}.{{ column }} is null))
    {%- endfor -%}
{%- endmacro %}

{#- Indexes for PostgreSQL, the one warehouse here that uses them for the runs' key lookups; none elsewhere
    (DuckDB scans columns, and checks a unique index within a transaction before its deletes). -#}
{% macro postgres_indexes(indexes) -%}
    {{ return(indexes if target.type == 'postgres' else []) }}
{%- endmacro %}

{#- The days whose counts the run's days can change: the run's days, and every day any version of their events
    was logged on (a late event moves a play between days). -#}
{% macro changed_days(versions) -%}
    {{ run_days_relation() }}
    union
    select all_versions.log_date
    from {{ versions }} as all_versions
    inner join ({{ changed_event_keys(versions) }}) as changed_keys
        on
            all_versions.session_id = changed_keys.session_id
            and all_versions.item_in_session = changed_keys.item_in_session
{%- endmacro %}
