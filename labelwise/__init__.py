"""Labelwise: knowledge-engineer tooling around the CDS Hooks service."""
