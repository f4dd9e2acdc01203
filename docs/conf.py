"""Sphinx configuration of the documentation site (``make docs``; warnings are errors).

Pages are Markdown (myst-parser); the API reference comes from the docstrings (autodoc). The build
runs offline: no intersphinx inventory is fetched, so links to Airflow's documentation are plain URLs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
# The package imported from this checkout, not from whatever happens to be installed.
sys.path.insert(0, str(REPO))
# Importing Airflow for autodoc must not create or touch anyone's AIRFLOW_HOME.
os.environ.setdefault("AIRFLOW_HOME", str(DOCS / "_build" / "airflow-home"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

from airflow_workflow_provider import __version__  # noqa: E402

project = "airflow-workflow-provider"
author = "airflow-workflow-provider developers"
copyright = "the airflow-workflow-provider developers"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
# Files starting with "_" are included into pages, not pages of their own.
exclude_patterns = ["_build", "README.md", "**/_*.md"]

myst_enable_extensions = ["colon_fence", "deflist"]
# "page.md#a-heading" links resolve for headings down to level 3.
myst_heading_anchors = 3

autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
# Types go into the parameter descriptions, where the :param: docstrings already explain each argument.
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_inherit_docstrings = False

html_theme = "furo"
html_title = f"airflow-workflow-provider {release}"
html_static_path: list[str] = []
