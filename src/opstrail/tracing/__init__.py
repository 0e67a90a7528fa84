"""The pure trace core: trace-info kinds, the neutral tree and the builders.

Nothing here does I/O, reads a clock, touches a database or speaks HTTP.
"""
