{#- A data test's `where` config may name the run's first and last day as __first_day__ and __last_day__: tests
    of incremental models then check what the run's days changed, not all history. Without a run date (`make
    check`, or dbt test on its own) the filter is dropped and the test covers all of history. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where and ('__first_day__' in where or '__last_day__' in where) -%}
        {%- set first, last = run_date_literal(), run_end_date_literal() -%}
        {%- set where = where | replace('__first_day__', first) | replace('__last_day__', last)
            if first is not none else none -%}
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
