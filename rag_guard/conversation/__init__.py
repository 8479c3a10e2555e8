"""Conversations: a follow-up read in the turns before it, and the guard's own clarifying questions chained."""
