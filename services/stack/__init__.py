"""A whole local deployment (Valkey, the API, worker processes) on free ports, started the way
`rag up` starts it: what the integration tests and the benchmarks run against."""
