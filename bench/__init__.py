"""Benchmarks of ecocase on PostgreSQL: ``python -m bench`` (see bench/README.md).

One run measures the raw PostgreSQL insert rate from psycopg 3 (the baseline a command cannot
beat), then for each ASGI server (uvicorn, granian) starts ``ecocase serve`` on a fresh schema
and drives it over keep-alive HTTP/1.1 from a cheap asyncio client: a trivial GET, commands
that each append one event (1 and 16 clients), and reads of a project.
"""
