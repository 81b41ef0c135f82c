"""The agent that runs on a member's premises and publishes only what the owner's policy allows."""
