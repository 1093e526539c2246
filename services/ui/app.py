"""The Streamlit app: `python -m streamlit run services/ui/app.py -- --api-url URL`.

It talks to the REST API only, over HTTP (services/ui/client.py); see launch.py for settings.
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:  # streamlit puts the script's folder on the path, not the repo
    sys.path.insert(0, str(_REPO))

import streamlit as st

from services.ui.client import ApiClient
from services.ui.launch import ui_config
from services.ui.views import ask, corpus, search, sidebar


@st.cache_resource
def _shared_client(api_url: str, api_key: str | None) -> ApiClient:
    """One HTTP client (and connection pool) for every browser session; httpx's is thread-safe."""
    return ApiClient(api_url, api_key=api_key)


def _client() -> ApiClient:
    config = ui_config(sys.argv[1:])
    return _shared_client(config.api_url, config.api_key)


def corpus_page() -> None:
    corpus.render(_client())


def ask_page() -> None:
    ask.render(_client())


def search_page() -> None:
    search.render(_client())


def main() -> None:
    st.set_page_config(page_title="rag-papers", page_icon=":material/library_books:", layout="wide")
    api = _client()
    page = st.navigation(
        [
            st.Page(
                corpus_page,
                title="Corpus",
                icon=":material/upload_file:",
                url_path="corpus",
                default=True,
            ),
            st.Page(ask_page, title="Ask", icon=":material/forum:", url_path="ask"),
            st.Page(search_page, title="Search", icon=":material/search:", url_path="search"),
        ]
    )
    with st.sidebar:
        st.caption(f"API {api.base_url}")
        sidebar.health_line(api)
        sidebar.corpus_selector(api)
        sidebar.cache_panel(api)
    page.run()


main()
