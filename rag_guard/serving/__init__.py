"""Serving: the guarded pipeline behind the OpenAI chat API (`server`), chat histories turned into one
question (`conversation`), and the gate on LangChain agents (`middleware`, which needs the `agents` extra).

Each is imported from its own module, so serving one does not load the others' frameworks.
"""
