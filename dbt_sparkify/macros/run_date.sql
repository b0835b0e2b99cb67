{#- The run's days: from its first day, the var run_date, to its last day, the var run_end_date, both included;
    without the vars, the environment variables SPARKIFY_RUN_DATE and SPARKIFY_RUN_END_DATE (how the DAG passes
    them). Without a last day the run covers one day; without a first day, every staged day is processed. The
    environment is read only when executing: read at parse time, or passed with --vars, new days would make dbt
    parse the project again in every task. Validated so that nothing but an ISO date reaches the SQL. -#}
{% macro run_day_value(value, name) -%}
    {%- if value is none or value == '' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value | string) -%}
        {{ exceptions.raise_compiler_error(name ~ " must be YYYY-MM-DD, got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return(value | string) }}
{%- endmacro %}

{#- The run's days as ISO strings, first to last, or none when every staged day is processed. -#}
{% macro run_days() -%}
    {#- Both bounds from the vars, or both from the environment: never one of each. -#}
    {%- set first = run_day_value(var('run_date', none), 'var run_date') -%}
    {%- if first is not none -%}
        {%- set last = run_day_value(var('run_end_date', none), 'var run_end_date') or first -%}
    {%- elif execute -%}
        {%- set first = run_day_value(env_var('SPARKIFY_RUN_DATE', ''), 'SPARKIFY_RUN_DATE') -%}
        {%- set last = run_day_value(env_var('SPARKIFY_RUN_END_DATE', ''), 'SPARKIFY_RUN_END_DATE') or first -%}
    {%- endif -%}
    {%- if first is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set parse = modules.datetime.date.fromisoformat -%}
    {%- set count = (parse(last) - parse(first)).days + 1 -%}
    {%- if count < 1 -%}
        {{ exceptions.raise_compiler_error("run_end_date " ~ last ~ " is before run_date " ~ first) }}
    {%- endif -%}
    {%- set days = [] -%}
    {%- for offset in range(count) -%}
        {%- do days.append((parse(first) + modules.datetime.timedelta(days=offset)).isoformat()) -%}
    {%- endfor -%}
    {{ return(days) }}
{%- endmacro %}

{% macro date_literal(day) -%}
    cast('{{ day }}' as date)
{%- endmacro %}

{#- The run's first day as a SQL date literal, or none when every staged day is processed. -#}
{% macro run_date_literal() -%}
    {%- set days = run_days() -%}
    {{ return(none if days is none else date_literal(days[0])) }}
{%- endmacro %}

{#- The run's last day as a SQL date literal, or none when every staged day is processed. -#}
{% macro run_end_date_literal() -%}
    {%- set days = run_days() -%}
    {{ return(none if days is none else date_literal(days[-1])) }}
{%- endmacro %}

{#- A predicate on the run's days: `column` within them (operator '='), or up to the last of them ('<='); `true`
    when every staged day is processed. -#}
{% macro run_date_filter(column, operator='=') -%}
    {%- if operator not in ['=', '<='] -%}
        {{ exceptions.raise_compiler_error("run_date_filter operator must be '=' or '<=', got '" ~ operator ~ "'") }}
    {%- endif -%}
    {%- set days = run_days() -%}
    {%- if days is none -%}
        true
    {%- elif operator == '<=' -%}
        {{ column }} <= {{ date_literal(days[-1]) }}
    {%- elif days | length == 1 -%}
        {{ column }} = {{ date_literal(days[0]) }}
    {%- else -%}
        {{ column }} between {{ date_literal(days[0]) }} and {{ date_literal(days[-1]) }}
    {%- endif -%}
{%- endmacro %}

{#- The run's days as a relation of one column, log_date: one row per day, staged or not (portable: Redshift
    has no generate_series on its compute nodes). -#}
{% macro run_days_relation() -%}
    {%- for day in run_days() %}
    select {{ date_literal(day) }} as log_date
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}
