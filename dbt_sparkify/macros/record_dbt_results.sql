{#- Every node's result of a DAG run, kept in the warehouse: <raw schema>.dbt_results, one row per run (Airflow's
    run id, SPARKIFY_RUN_ID), node and invocation. A node run again in the same Airflow run (a rerun of the
    build, a retried task) replaces its row. Three hooks of one statement each (create, delete, insert): not
    every adapter runs two statements in one call. Outside a DAG run (no SPARKIFY_RUN_ID) nothing is recorded. -#}

{% macro dbt_results_relation() -%}
    {{ return(env_var('SPARKIFY_RAW_SCHEMA', 'landing') ~ '.dbt_results') }}
{%- endmacro %}

{% macro dbt_results_recorded(results) -%}
    {{ return(execute and env_var('SPARKIFY_RUN_ID', '') != '' and flags.WHICH in ['build', 'run', 'test']
        and results | length > 0) }}
{%- endmacro %}

{% macro sql_string(value) -%}
    {%- if value is none -%}
        null
    {%- else -%}
        {{ adapter.dispatch('sql_string', 'sparkify')(value | string) }}
    {%- endif -%}
{%- endmacro %}

{% macro default__sql_string(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}

{#- Redshift reads a backslash in a string literal as an escape. -#}
{% macro redshift__sql_string(value) -%}
    '{{ value | replace("\\", "\\\\") | replace("'", "''") }}'
{%- endmacro %}

{% macro create_dbt_results(results) -%}
    {%- if dbt_results_recorded(results) -%}
        create table if not exists {{ dbt_results_relation() }} (
            run_id {{ text_type() }},
            run_date date,
            invocation_id {{ text_type() }},
            unique_id {{ text_type() }},
            resource_type {{ text_type() }},
            node_name {{ text_type() }},
            status {{ text_type() }},
            execution_time double precision,
            rows_affected bigint,
            failures bigint,
            message {{ text_type() }},
            compiled_sql {{ text_type() }},
            recorded_at timestamp
        )
    {%- endif -%}
{%- endmacro %}

{% macro delete_dbt_results(results) -%}
    {%- if dbt_results_recorded(results) -%}
        delete from {{ dbt_results_relation() }}
        where
            run_id = {{ sql_string(env_var('SPARKIFY_RUN_ID')) }}
            and unique_id in (
                {%- for result in results %}
                    {{ sql_string(result.node.unique_id) }}{{ ',' if not loop.last }}
                {%- endfor %}
            )
    {%- endif -%}
{%- endmacro %}

{% macro insert_dbt_results(results) -%}
    {%- if dbt_results_recorded(results) -%}
        {%- set day = run_date_literal() -%}
        {#- A literal: Redshift's current_timestamp runs on the leader node only and fails in a write. -#}
        {%- set recorded_at = "cast('" ~ modules.datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M:%S') ~ "' as timestamp)" -%}
        insert into {{ dbt_results_relation() }}
        values
        {%- for result in results %}
            {%- set node = result.node -%}
            {%- set rows = (result.adapter_response or {}).get('rows_affected') -%}
            {#- The query of a failing test, to show its rows; the message, bounded. -#}
            {%- set query = node.compiled_code if node.resource_type == 'test' and result.status in ['fail', 'warn', 'error'] else none %}
            (
                {{ sql_string(env_var('SPARKIFY_RUN_ID')) }},
                {{ day if day is not none else 'cast(null as date)' }},
                {{ sql_string(invocation_id) }},
                {{ sql_string(node.unique_id) }},
                {{ sql_string(node.resource_type) }},
                {{ sql_string(node.name) }},
                {{ sql_string(result.status) }},
                {{ result.execution_time | float }},
                {{ rows | int if rows is not none and rows | string != '-1' else 'cast(null as bigint)' }},
                {{ result.failures | int if result.failures is not none else 'cast(null as bigint)' }},
                {{ sql_string((result.message | string)[:4000] if result.message is not none else none) }},
                {{ sql_string(query[:60000] if query else none) }},
                {{ recorded_at }}
            ){{ ',' if not loop.last }}
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}
