"""A faithful loopback stand-in for the Chaster Extensions API (tests, demo, benchmarks)."""

from .population import Population
from .server import StandIn, StandInConfig

__all__ = ["Population", "StandIn", "StandInConfig"]
