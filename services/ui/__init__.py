"""The web UI: a Streamlit app that talks to the REST API over HTTP only."""
