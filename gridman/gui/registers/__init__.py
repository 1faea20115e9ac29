"""Qt table models over the registers: hold one page of rows at a time, fetch more lazily."""
