"""A faithful loopback stand-in for the Chaster Extensions API (tests, demo, benchmarks)."""

from standin.population import Population
from standin.server import StandIn, StandInConfig

__all__ = ["Population", "StandIn", "StandInConfig"]
