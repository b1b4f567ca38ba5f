"""The HTTP decision service and what runs it: `app` (Starlette), `metrics`, `schema` (pydantic
boundary models and the OpenAPI document), `reload` (`Engine`, hot reload), `devrun` (`make run`).

Importing this package imports nothing heavy; each module loads its own dependencies.
"""
