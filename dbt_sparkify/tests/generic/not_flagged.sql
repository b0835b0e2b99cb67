{#- No row has its flag (a boolean column) set. At warn severity, a flagged day is reported, not failed. -#}
{% test not_flagged(model, column_name) %}

    select *
    from {{ model }}
    where {{ column_name }}

{% endtest %}
