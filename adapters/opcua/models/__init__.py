"""Companion models beyond OPC 40001 Machinery, and the explicit mapping of state variables.

``discovery`` finds the machines of every model on a server, ``rules`` maps each model's state
variables to the common states, ``resolver`` applies those rules to the values read, and
``mapping`` defines the ``nodes`` settings for servers without a companion model.
"""
