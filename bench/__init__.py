"""Benchmarks of ecocase on PostgreSQL: ``python -m bench`` runs every figure of issue 5 and
prints one table (see bench/README.md and :mod:`bench.suite`)."""
