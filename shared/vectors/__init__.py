"""Vectors: the query/passage embedder, the BM25 sparse encoder, and the vector stores
(qdrant-edge embedded, Qdrant server) behind one protocol."""
