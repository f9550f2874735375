"""A durable agent loop on langchain-core (LLM and tool calls as steps, approvals as callbacks)."""
