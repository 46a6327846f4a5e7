from tests.store_behaviour.backends import postgres_url

__all__ = ["postgres_url"]
