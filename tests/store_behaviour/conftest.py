from tests.store_behaviour.backends import backend, postgres_url

__all__ = ["backend", "postgres_url"]
