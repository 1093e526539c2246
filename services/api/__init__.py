"""The FastAPI service: routes, request/response models, dependency wiring, error mapping."""
