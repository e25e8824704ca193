"""Partner agencies (つなぎ先): who a concern can be referred to."""
