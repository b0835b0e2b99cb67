{#- The song_match_strategy var, validated: `normalized` (the default) or `exact`. -#}
{% macro song_match_strategy() -%}
    {%- set strategy = var('song_match_strategy', 'normalized') -%}
    {%- if strategy not in ['normalized', 'exact'] -%}
        {{ exceptions.raise_compiler_error(
            "var song_match_strategy must be 'normalized' or 'exact', got '" ~ strategy ~ "'"
        ) }}
    {%- endif -%}
    {{ return(strategy) }}
{%- endmacro %}
