"""Privacy and utility evaluation protocols on feature stores (one peer module per protocol)."""
