"""Murmur's probes and actions for Chaos Toolkit: what the stock extensions lack.

Each experiment in `chaos/experiments/` calls these as `python` providers. They share one
run folder (`context`), so an action early in the method can leave what a probe of the
steady-state hypothesis checks after it: the ledger of acknowledged posts, the background
load's report, when the fault started and ended, the seconds to recover.
"""
