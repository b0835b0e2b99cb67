{#- Epoch milliseconds (integer or float) to a UTC timestamp without time zone. -#}
{% macro epoch_ms_to_timestamp(column) -%}
    {{ return(adapter.dispatch('epoch_ms_to_timestamp', 'sparkify')(column)) }}
{%- endmacro %}

{% macro default__epoch_ms_to_timestamp(column) -%}
    (to_timestamp({{ column }} / 1000.0) at time zone 'UTC')
{%- endmacro %}

{% macro duckdb__epoch_ms_to_timestamp(column) -%}
    epoch_ms(cast({{ column }} as bigint))
{%- endmacro %}

{% macro redshift__epoch_ms_to_timestamp(column) -%}
    (timestamp 'epoch' + cast({{ column }} as bigint) / 1000.0 * interval '1 second')
{%- endmacro %}
