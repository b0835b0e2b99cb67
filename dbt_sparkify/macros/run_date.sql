{#- The run's day as a SQL date literal, or none when every staged day is processed: the var run_date, else
    the environment variable SPARKIFY_RUN_DATE (how the DAG passes it). The variable is read only when executing:
    read at parse time, or passed with --vars, a new day would make dbt parse the project again in every task.
    Validated so that nothing but an ISO date reaches the SQL. -#}
{% macro run_date_literal() -%}
    {%- set value = var('run_date', none) -%}
    {%- if (value is none or value == '') and execute -%}
        {%- set value = env_var('SPARKIFY_RUN_DATE', '') -%}
    {%- endif -%}
    {%- if value is none or value == '' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value | string) -%}
        {{ exceptions.raise_compiler_error("var run_date must be YYYY-MM-DD, got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return("cast('" ~ value ~ "' as date)") }}
{%- endmacro %}

{#- A predicate on the run's day (`column <operator> run_date`), or `true` when run_date is unset. -#}
{% macro run_date_filter(column, operator='=') -%}
    {%- if operator not in ['=', '<='] -%}
        {{ exceptions.raise_compiler_error("run_date_filter operator must be '=' or '<=', got '" ~ operator ~ "'") }}
    {%- endif -%}
    {%- set day = run_date_literal() -%}
    {%- if day is none -%}
        true
    {%- else -%}
        {{ column }} {{ operator }} {{ day }}
    {%- endif -%}
{%- endmacro %}
