"""Messages shared by the commands that connect to an OPC UA server (``browse``, ``trust``).

They live in agent.po under this context, and each command's catalogue includes them, so an
unreachable server or a bad ``--timeout`` reads the same in both.
"""

OPCUA_CLIENT_CONTEXT = "agent.opcua_client"
