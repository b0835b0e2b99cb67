{#- md5 of the columns' text joined with '-', null-safe: the same key on every warehouse. md5 directly, not
    dbt.hash, which casts its argument to dbt's string type (varchar(256) on Redshift). -#}
{% macro surrogate_key(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ " as " ~ text_type() ~ "), '_null_')") -%}
        {%- if not loop.last %}{% do parts.append("'-'") %}{% endif -%}
    {%- endfor -%}
    md5({{ dbt.concat(parts) }})
{%- endmacro %}
