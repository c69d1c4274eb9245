"""Setting up a rented instance: deploy ComfyUI or a training backend over SSH, and the idle watchdog on it.

Code outside ``providers`` imports these names from ``ategnatos_mcp.providers``.
"""
