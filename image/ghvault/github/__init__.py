"""GitHub access: the client (REST and GraphQL) and the conditional-request cache."""
