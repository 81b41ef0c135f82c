"""Connectors that read a member's sources and report what they observe.

The public interface for adapter authors is ``adapters.base`` (the ``Adapter`` class and the
observation types) and ``adapters.errors``. Adapters are found by name through the Python entry
point group ``kooperant.adapters``; see ``adapters.registry``.
"""
