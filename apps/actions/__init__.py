"""The action framework: `registry` to declare actions, `Db` for the SQL they run."""

from .db import Db, UnsafeQuery
from .registry import registry

__all__ = ["Db", "UnsafeQuery", "registry"]
