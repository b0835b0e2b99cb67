"""Where the Airflow UI serves the dbt docs (Cosmos' docs hosting); no Cosmos import, so the CLI stays light."""

from __future__ import annotations

import json

from sparkify.settings import Settings

DOCS_SLUG = "sparkify"
DOCS_PATH = f"/cosmos/{DOCS_SLUG}/dbt_docs_index.html"


def docs_projects_config(settings: Settings) -> str:
    """``[cosmos] dbt_docs_projects``: the Airflow UI's Browse menu links to these docs."""
    return json.dumps(
        {
            DOCS_SLUG: {
                "dir": str(settings.dbt_docs_dir),
                "index": "index.html",
                "name": "dbt docs: dbt_sparkify",
            }
        }
    )
