"""Scenario specification: frozen, validated data built from TOML files."""

from sim.spec.costs import Costs, StationCost
from sim.spec.load import load_scenario, scenario_from_dict
from sim.spec.scenario import Scenario
from sim.spec.workload import Flow

__all__ = ["Costs", "Flow", "Scenario", "StationCost", "load_scenario", "scenario_from_dict"]
