"""Connections to the outside: the Redis client (one server, Sentinel or Cluster) and
MySQL through Tortoise ORM."""
