"""Member health: the one verdict (pure) and the one probe client that asks members over HTTP."""
