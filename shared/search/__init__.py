"""Search: ranking (pure fusion and result rows), the retriever over the store and the
cache, the answerer, and retrieval evaluation."""
