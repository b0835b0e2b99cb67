{#- Text for matching: lowercase, trimmed, runs of whitespace collapsed to one space. -#}
{% macro normalize_text(column) -%}
    {{ return(adapter.dispatch('normalize_text', 'sparkify')(column)) }}
{%- endmacro %}

{% macro default__normalize_text(column) -%}
    lower(trim(regexp_replace(cast({{ column }} as {{ text_type() }}), '[[:space:]]+', ' ', 'g')))
{%- endmacro %}

{#- Redshift's regexp_replace replaces every match and takes no flags argument. -#}
{% macro redshift__normalize_text(column) -%}
    lower(trim(regexp_replace(cast({{ column }} as {{ text_type() }}), '[[:space:]]+', ' ')))
{%- endmacro %}
