"""Identity and authorisation: users, roles, terminals, login, sessions/tokens, separation of duties."""
