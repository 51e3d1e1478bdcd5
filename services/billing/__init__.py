"""Orders (vendas), payment methods (processor tokens only) and charges."""
