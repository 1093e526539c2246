"""rag-papers shared library: everything the API and the workers both stand on."""
