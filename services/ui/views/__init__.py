"""The app's pages and its sidebar, each a function of the API client."""
