"""What talks to devices or runs next to them."""
