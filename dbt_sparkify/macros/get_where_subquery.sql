{#- A data test's `where` config may name the run's day as __run_date__: tests of incremental models then check
    what the run's day changed, not all history. Without a run date (`make check`, or dbt test on its own) the
    filter is dropped and the test covers all of history. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where and '__run_date__' in where -%}
        {%- set day = run_date_literal() -%}
        {%- set where = where | replace('__run_date__', day) if day is not none else none -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}
