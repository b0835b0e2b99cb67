{#- The type of free text: on Redshift an unqualified varchar (and dbt's type_string, `text`) is
    varchar(256), which would cut longer titles and names before they are matched; elsewhere text is
    unbounded. -#}
{% macro text_type() -%}
    {{ return(adapter.dispatch('text_type', 'sparkify')()) }}
{%- endmacro %}

{% macro default__text_type() -%}
    {{ return(dbt.type_string()) }}
{%- endmacro %}

{% macro redshift__text_type() -%}
    {{ return('varchar(65535)') }}
{%- endmacro %}
