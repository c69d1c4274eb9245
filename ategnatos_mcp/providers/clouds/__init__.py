"""The GPU clouds' own APIs behind one protocol (``base.GpuProvider``): RunPod, Vast.ai, Lambda and this machine,
with GPU names made comparable, container images checked, and secrets redacted from every answer.

Code outside ``providers`` imports these names from ``ategnatos_mcp.providers``.
"""
