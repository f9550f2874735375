"""Edges to other systems (AWS, OpenTelemetry, LangChain), each in its own package."""
