{#- The run's day as a SQL date literal, or none when every staged day is processed.
    Validated so that nothing but an ISO date reaches the SQL. -#}
{% macro run_date_literal() -%}
    {%- set value = var('run_date', none) -%}
    {%- if value is none or value == '' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value | string) -%}
        {{ exceptions.raise_compiler_error("var run_date must be YYYY-MM-DD, got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return("cast('" ~ value ~ "' as date)") }}
{%- endmacro %}
