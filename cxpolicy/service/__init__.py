"""The HTTP decision service and what runs it: `app` (Starlette), `metrics`, `schema` (pydantic
boundary models and the OpenAPI document), `reload` (`Engine`, hot reload), `devrun` (`make run`).

Input: HTTP requests. Output: decisions, metrics and the OpenAPI document.

Importing this package imports nothing heavy; each module loads its own dependencies.
"""
