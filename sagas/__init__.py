"""Saga primitives on top of durably.core (compensations, rollback, pivot)."""
